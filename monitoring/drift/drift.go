package drift

// The kinds of watched tensors.
const (
	// KindInput is a model input: a sample is a vector of values.
	KindInput = "input"
	// KindOutput is a model output: a sample is a vector of values.
	KindOutput = "output"
	// KindPrediction is the predicted class (argmax) of an output whose
	// rows are class scores: a sample is a class index.
	KindPrediction = "prediction"
)

// The constants of the bins, the window and the decision (see the package
// doc).
const (
	// Bins is the number of quantile bins of a reference element, before
	// the two outer bins and the merging of equal edges.
	Bins = 10
	// Chunks is the number of chunks a window is kept in.
	Chunks = 10
	// MinSamples is the fewest non-NaN window values of an element for it
	// to be tested.
	MinSamples = 50
	// Alpha is the family-wise significance level per tensor and per
	// evaluation.
	Alpha = 0.001
	// MinPSI is the effect-size floor: the PSI an element must reach, on
	// top of significance, for drift to be detected.
	MinPSI = 0.1
	// Epsilon is the floor of the proportions in the PSI formula.
	Epsilon = 1e-4
	// Format is the format of a reference file.
	Format = "infergate-drift-reference/v1"
)

// Result is the comparison of one tensor's window with its reference (or
// with another window).
type Result struct {
	// Samples is the number of samples in the window.
	Samples int64 `json:"samples"`
	// ReferenceSamples is the number of reference samples: the most finite
	// reference values of an element (the sum of the class counts of a
	// prediction), or the baseline window's samples for CompareWindows.
	ReferenceSamples int64 `json:"reference_samples"`
	// Tested is m, the number of elements tested.
	Tested int `json:"tested"`
	// PSI, KS and JS are the largest over the tested elements; 0 when none
	// is tested.
	PSI float64 `json:"psi"`
	KS  float64 `json:"ks"`
	JS  float64 `json:"js"`
	// PValue is the smallest corrected p-value, min(1, m·p), over the tested
	// elements; 1 when none is tested.
	PValue float64 `json:"p_value"`
	// Detected says drift is detected: some element is.
	Detected bool `json:"detected"`
	// Elements holds one entry per element (one for a prediction tensor).
	Elements []ElementResult `json:"elements"`
}

// ElementResult is the comparison of one element. An element that is not
// tested (fewer than MinSamples values) has scores 0 and PValue 1.
type ElementResult struct {
	// Index is the element's index along the last axis (0 for a
	// prediction).
	Index int `json:"index"`
	// Samples is the number of the element's non-NaN values in the window.
	Samples int64 `json:"samples"`
	// PSI is the population stability index.
	PSI float64 `json:"psi"`
	// KS is the binned Kolmogorov–Smirnov statistic.
	KS float64 `json:"ks"`
	// JS is the Jensen–Shannon distance.
	JS float64 `json:"js"`
	// PValue is the chi-square p-value, Bonferroni-corrected: min(1, m·p).
	PValue float64 `json:"p_value"`
	// Detected is PValue < Alpha and PSI ≥ MinPSI.
	Detected bool `json:"detected"`
}
