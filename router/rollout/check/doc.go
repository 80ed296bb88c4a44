// Package check holds the statistical checks of a progressive (canary)
// rollout: at each interval the rollout controller compares the canary
// version's figures with the stable version's and asks three checks,
// [ErrorRate], [P99Ratio] and [Drift], each of which answers with a
// [Result] whose [Verdict] is [Pass], [Fail] or [Inconclusive].
//
// It is pure computation: its functions never start a goroutine, take a
// lock, do I/O, read a clock or keep state between calls, and never panic
// on bad figures (NaN, negative counts, out-of-range limits): those give
// [Inconclusive] with a reason that names the bad input. It knows nothing
// of the controller, of Prometheus or of the monitoring package whose
// figures it is handed; it must never decide what the rollout does with a
// verdict (promote, hold, roll back): that is the controller's job.
//
// # Three verdicts
//
// Every check is a pair of one-sided tests at the caller's confidence c
// (e.g. 0.95; it must be in [0.5, 1)):
//
//   - Fail only when the canary is worse than its limit with confidence c;
//   - Pass only when the canary is within its limit with confidence c;
//   - Inconclusive otherwise: the data cannot tell either way yet.
//
// Inconclusive exists because a check with two answers must guess when
// the data is thin. Argo Rollouts and Flagger compare a handful of
// requests' error rate or latency with a threshold, so a low-traffic
// canary flaps (one error in twenty requests is a 5% error rate) or
// passes by luck (no error in twenty requests says little about a 1%
// limit). A check here that cannot tell says so, and the controller holds
// the rollout at its current step until more traffic makes it tell.
//
// # Error rate
//
// [ErrorRate] takes the canary's errors of requests and a limit maxRate.
// Its bounds are the one-sided Clopper–Pearson (exact binomial) bounds of
// the error probability p at confidence c, with α = 1 − c and x errors of
// n requests:
//
//	lower = Beta(x, n−x+1).Quantile(α)   (0 when x = 0)
//	upper = Beta(x+1, n−x).Quantile(c)   (1 when x = n)
//
// computed with gonum's distuv.Beta. It fails when lower > maxRate and
// passes when upper ≤ maxRate. With no error at all, upper = 1 − α^(1/n),
// so that a 1% limit at 95% needs 299 clean requests to pass (upper
// 0.00997; 300 give 0.00994); Value is x/n.
//
// # p99 latency ratio
//
// [P99Ratio] compares the canary's 99th percentile latency with the
// stable version's: it fails when the canary's p99 is more than maxRatio
// (e.g. 1.5) times the stable one's with confidence c, and passes when it
// is at most maxRatio times with confidence c. It sorts copies of the two
// samples of latencies (seconds, any order; the callers' slices are not
// changed).
//
// The bounds of each p99 are distribution-free order-statistic
// (binomial) confidence bounds for a quantile. For a sample of n
// latencies sorted as x(1) ≤ … ≤ x(n), the q-quantile ξ (q = 0.99) and a
// one-sided level γ, the number of latencies below ξ is Binomial(n, q),
// so that, for any continuous distribution,
//
//	upper bound: x(k) for the smallest k with P(Binomial(n, q) ≤ k−1) ≥ γ,
//	             since P(x(k) ≥ ξ) = P(Binomial(n, q) < k);
//	lower bound: x(k) for the largest k with P(Binomial(n, q) ≥ k) ≥ γ,
//	             since P(x(k) ≤ ξ) = P(Binomial(n, q) ≥ k).
//
// Both hold with probability at least γ for any distribution, continuous
// or not (ties only make them conservative). The ratio's bounds combine
// the two samples' with a Bonferroni split: each one-sided bound is taken
// at γ = 1 − (1−c)/2, so that
//
//	lower ratio = lower(canary p99) / upper(stable p99)
//	upper ratio = upper(canary p99) / lower(stable p99)
//
// each hold with confidence at least c (the chance that either of the two
// bounds behind one ratio bound misses is at most (1−c)/2 + (1−c)/2). It
// fails when the lower ratio > maxRatio and passes when the upper ratio
// ≤ maxRatio. Value is the ratio of the two nearest-rank sample p99s,
// x(⌈0.99·n⌉).
//
// The upper bound of a 0.99 quantile needs the largest latency, x(n), to
// exceed it with probability γ: 1 − 0.99^n ≥ γ, that is
// n ≥ ln(1−γ)/ln(0.99). At the default confidence 0.95, γ = 0.975 and
// ln(0.025)/ln(0.99) = 367.04: 0.99^367 = 0.02501 is just above 0.025,
// so each sample needs at least 368 latencies ([MinP99Samples]: 299 at
// confidence 0.90, 528 at 0.99). With fewer in either sample the check is
// Inconclusive, with reason "need at least 368 samples". At the minimum
// the upper bound is the sample's maximum, so a clear pass takes a few
// thousand latencies on each side: with 5,000 exponential latencies each,
// the ratio's bounds come out near [0.89, 1.14] for two equal p99s.
//
// # Prediction drift
//
// [Drift] takes the outcome of the monitoring package's comparison of the
// canary's live drift windows with the stable version's: psi, the worst
// element's population stability index, its p-value (Bonferroni-corrected
// over the elements by the monitoring package) of the chi-square test of
// homogeneity, and the number of samples behind it (the smaller window).
// It fails when psi > maxPSI (e.g. 0.2) and the p-value < 1 − c: the
// difference is both large and significant, and a large PSI from a few
// samples is not enough. It passes when psi ≤ maxPSI and there are at
// least MinDriftSamples (50) samples: PSI is a measure of effect size, not
// a test, so the pass asks for a minimum of data instead of a confidence.
// Otherwise it is Inconclusive: a large PSI that is not significant, or a
// small PSI from too few samples.
//
// # Results
//
// A [Result] carries the check's name ("error_rate", "p99_ratio",
// "drift"), its verdict, the figure checked (Value), the limit, the
// bounds of the figure at the confidence (Lower, Upper: NaN where the
// check has none or could not compute them), the samples behind it and a
// reason for people. It is written to JSON with lower-case snake keys,
// the verdict as its string and non-finite numbers as null.
package check
