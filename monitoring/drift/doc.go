// Package drift is the statistics of input and prediction drift
// monitoring: it builds the reference distribution of a model version's
// watched tensors, keeps a live sliding window of each in fixed memory,
// and compares the two, element by element, to decide whether the
// tensor's distribution has drifted.
//
// It is pure computation. It never starts a goroutine, takes no lock, does
// no I/O except reading and writing reference files, and knows nothing of
// Prometheus or of the packages above it. None of its types is safe for
// concurrent use: each [Builder] and [Window] is owned by one goroutine (in
// infergate, the drift worker of a model version), which feeds it the
// samples that the request path copies to it.
//
// # Samples
//
// A watched tensor is described by a [Spec]. For an input or an output
// (KindInput, KindOutput) a sample is one row: a vector of Elements float32
// values, the first max_elements values of the tensor's last axis, and
// each element (position in that vector) is tracked on its own. For an
// output whose rows are class scores, the predicted class (the argmax of
// the row) is also watched as a tensor of its own, of kind KindPrediction:
// a sample is one class index in [0, Classes).
//
// # Bins
//
// The reference of an element is a set of bins and the reference count in
// each. From the n finite reference values of the element (NaN and ±Inf
// are skipped), the edges are the sorted unique set of: the minimum; the
// k/Bins quantiles for k = 1..Bins-1 (Bins = 10), with linear
// interpolation (R's type 7: with h = (n−1)·k/Bins, x[⌊h⌋] +
// (h−⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]) of the sorted values); and
// math.Nextafter(maximum, +Inf). A value x falls in bin i when i edges are
// ≤ x, so there are len(edges)+1 bins: bin 0 holds the values below the
// reference minimum and the last bin those above its maximum, both empty
// in the reference. There are at most Bins+1 edges, Bins+2 bins; a
// constant element has 2 edges and 3 bins (below, the constant, above),
// and an element with no finite reference value has no edge and one bin.
// In a window, a NaN value is counted apart ([Window.NaN]), in no bin, and
// so is an element that a short sample lacks; −Inf and +Inf fall in the
// outer bins. For a prediction the bins are the classes.
//
// # Statistics
//
// For each element, the window's counts are compared with the reference's,
// bin by bin, as proportions p (reference) and q (window):
//
//   - PSI, the population stability index: Σ (q−p)·ln(q/p), p and q
//     floored at Epsilon (1e-4) in that formula, so that an empty bin costs
//     a large but finite amount.
//   - KS: the largest |CDF_q − CDF_p| over the bin boundaries. This binned
//     Kolmogorov–Smirnov statistic is a lower bound of the statistic of the
//     raw values, which can differ more inside a bin.
//   - JS: the Jensen–Shannon distance, the square root of the
//     Jensen–Shannon divergence with base-2 logarithms, in [0, 1].
//   - p-value: Pearson's chi-square test of homogeneity of the 2×K table
//     whose rows are the reference counts and the window counts. Adjacent
//     bins are first pooled, left to right, until each pooled column's
//     smaller expected count, column total × min(n_ref, n_win)/(n_ref +
//     n_win), is at least 5; a last group that falls short merges into the
//     one before it. With df = pooled columns − 1, p =
//     GammaIncRegComp(df/2, χ²/2) (gonum's mathext), and p = 1 when df < 1.
//
// A prediction tensor has one element, its class distribution, and the
// same PSI, JS and chi-square over the classes (pooled the same way); its
// KS is reported too, over the order of the class indices, which it
// depends on: read it with care.
//
// # The decision
//
// Call m the number of elements of a tensor that are tested: those whose
// window holds at least MinSamples (50) non-NaN values (and whose
// reference holds any). [Window.Compare] then computes, for each tested
// element i with chi-square p-value p_i:
//
//   - the corrected p-value min(1, m·p_i) (Bonferroni over the elements of
//     the tensor);
//   - drift is detected for the tensor if and only if some element i has a
//     corrected p-value below Alpha (0.001) and PSI_i ≥ MinPSI (0.1, the
//     conventional floor of a "moderate shift").
//
// The tensor's figures ([Result]) are its worst: the largest PSI, KS and
// JS over the tested elements and the smallest corrected p-value. An
// element with fewer than MinSamples values is not tested (it reports
// scores 0 and p-value 1); a tensor with no element tested is not
// detected, with p-value 1 and scores 0.
//
// The p-value part keeps small windows and many elements from raising
// false alarms. The target false-alarm rate is per tensor and per
// evaluation: when nothing has drifted, one Compare detects drift with
// probability at most Alpha, family-wise over the tensor's elements;
// Bonferroni is conservative when the elements are correlated, as the
// elements of real inputs often are. It is not a rate per stream: the
// evaluations of a stream overlap and share the sampling error of one
// reference, so the chance that a long stream raises some alarm grows
// with the number of evaluations. Measured with 256 uniform features, a
// reference of 1,000 samples and a window of 1,000 evaluated every 100
// samples (TestFalseAlarmRate, 200 seeds, -false-alarm-windows 10): 0.04 %
// of evaluations and 2 % of 10-window streams raised an alarm with Alpha
// at 0.001; with 0.01 it was 0.19 % and 10 %, which is why Alpha is 0.001.
// Take a larger reference, or alert on consecutive detections (the shipped
// alert rules wait 15 minutes), where that matters.
//
// The effect-size floor keeps a very large window from turning a
// negligible but significant shift into an alarm: with 200,000 samples on
// each side, a test alone flags a shift of 1% of a feature's range, the
// known failure of a plain KS test on big samples. MinPSI asks that the
// shift also be large enough to matter.
//
// # Windows
//
// A [Window] is the live window of one tensor: the counts of its recent
// samples in the bins of its reference, kept as a ring of Chunks (10)
// chunks of max(rows/Chunks, 1) samples each, where rows is the window
// size. Adding a sample to a full current chunk starts a new chunk and,
// when all Chunks are in use, drops the oldest, so that a full window
// holds between rows − rows/Chunks + 1 and rows samples (for rows a
// multiple of Chunks). [Window.Expire] drops the chunks whose newest sample
// is older than the window's maxAge (0: no time bound). The window's
// memory is fixed whatever its size: its counts are uint32, and take
//
//	bytes = Chunks × Elements × (Bins+2) × 4
//
// per tensor (120 KiB for 256 elements; Chunks × Classes × 4 for a
// prediction), plus Chunks × Elements × 4 bytes of NaN counters and a
// float64 copy of the reference's edges and counts, Elements × (2·Bins+3)
// × 8 bytes. [Window.Add] does a binary search over at most Bins+1 edges
// and one increment per element, and does not allocate; [Window.Compare]
// allocates its Result and a float64 sum of the chunks' counts.
//
// [CompareWindows] is the third reference: the live window of a
// candidate model version against the live window of a baseline (stable)
// version of the same tensor, decided the same way, the baseline in the
// reference's place (an element is tested when both windows hold
// MinSamples of its values). When the two versions' references have
// different edges, the candidate's counts are mapped onto the baseline's
// bins by linear interpolation of the candidate's binned CDF: each inner
// bin's count spread evenly between its edges, and the counts of the two
// outer open bins taken as point masses at the first and the last edge.
//
// # Reference files
//
// A [Reference] is written by [Reference.WriteFile] (atomically) and read
// by [ReadReference] as a JSON document:
//
//	{
//	  "format": "infergate-drift-reference/v1",
//	  "samples": 1000,
//	  "source": "first 1000 sampled rows",
//	  "model_sha256": "9f86d0…",
//	  "tensors": [
//	    {"kind": "input", "name": "x", "elements": [
//	      {"edges": [-0.99, -0.8, …, 0.99], "counts": [0, 100, …, 100, 0]}
//	    ]},
//	    {"kind": "prediction", "name": "label", "classes": [98, 103, …]}
//	  ]
//	}
//
// Its fields:
//
//   - format: always Format; another is an error.
//   - samples: how many samples the reference was taken from, per tensor
//     (an integer ≥ 0).
//   - source: free text for people: where the samples came from. Optional.
//   - model_sha256: the hex SHA-256 of the model file, for people and
//     tools; this package does not check it. Optional.
//   - tensors: one entry per watched tensor, its (kind, name) unique.
//
// Each entry of tensors has:
//
//   - kind: "input", "output" or "prediction".
//   - name: the tensor's name in the model's signature.
//   - elements (input, output): one entry per element, in order, each with
//     edges (finite, strictly increasing, at most Bins+1) and counts (the
//     reference count per bin, finite and ≥ 0, one more than the edges).
//   - classes (prediction): the reference count per class, finite and ≥ 0.
//
// [ParseReference] is strict: an unknown field, a wrong type, or an
// inconsistent value is an error that names the JSON path of the field,
// like "tensors[0].elements[3].edges[2]: ...".
package drift
