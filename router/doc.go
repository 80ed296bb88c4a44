// Package router decides which version of a model serves each request:
// it sits between the protocols (gateway, and later grpc) and the
// repository, and both protocol packages call its one decision API.
//
// # A request's path
//
// Route decides on the URL and the headers alone, so that the body is
// decoded once, against the chosen version's signature; Decision.Acquire
// then holds that version for the execution (loading it first when it is
// evicted), and Decision.Done reports the outcome to the version's
// breaker and releases it. The resolution order is: the version or label
// in the URL, then a header override (x-model-version, x-model-label;
// off with overrides: false), then the model's routing document, then
// the default, the highest ready version.
//
// # The routing document
//
// YAML under config.yaml's routing:, or <model>/routing.yaml (which takes
// precedence, and which PUT .../routing writes when the repository is
// writable), or JSON over the API. It is validated whole; an invalid
// document changes nothing and the error names the field path.
//
//   - split: any number of targets, by version or label, with positive
//     weights, normalised. Without a sticky key a request picks at random
//     (math/rand/v2, no global lock). With one (sticky: a header or a
//     cookie), the request's bucket is hash(salt, key) mod 10000 and the
//     targets own consecutive bucket ranges in list order (package split
//     states the ramp property exactly: the last target ramps
//     monotonically). The salt defaults to "<model>/default"; different
//     salts assign independently.
//   - breaker: one circuit breaker per version (sony/gobreaker). It opens
//     after consecutive_failures execution failures in a row, or when at
//     least min_requests counted requests of the current minute failed at
//     failure_ratio or more (load and client errors are not counted), and lets one probe through after
//     open_seconds; the probe's success closes it. Only failures of the
//     model itself count (ONNX Runtime errors, HTTP 500): load (a full
//     queue, a timeout) and the client's errors are neither successes nor
//     failures. While the breaker of the version the document chose is
//     open, the request goes to fallback, or else to the first split
//     target, the rollout's stable or the default version that is
//     another version with a breaker that is not open, with the reason in
//     x-infergate-fallback; when none can serve, 503. A version pinned by the URL
//     or a header gets no fallback: the client asked for that version.
//   - shadow: a share (percent) of the requests the primary answered is
//     mirrored to another version: the inputs and the primary's outputs
//     are copied, the request returns, and one of ShadowWorkers runs it
//     and compares the outputs (the largest absolute difference, and the
//     rows of [N, C] outputs whose argmax differs). At most ShadowQueue
//     wait; past that a shadow is dropped and counted. The client sees
//     only the primary's answer.
//   - rollout: progressive delivery from stable to canary. The canary
//     takes steps[0] percent (with a sticky key, the top buckets, so a
//     key never moves back while the weight grows); every
//     interval_seconds the controller asks three checks of
//     package rollout/check about the canary's figures of that interval,
//     against stable's:
//   - error rate: the canary's execution failures (HTTP 500) per
//     request against max_error_rate, with one-sided Clopper–Pearson
//     bounds at confidence;
//   - p99 ratio: the canary's p99 over stable's against max_p99_ratio,
//     with distribution-free order-statistic bounds of each p99
//     (Bonferroni over the two); it needs 368 samples a side at 0.95
//     (check.MinP99Samples), and at weight 100, where stable takes no
//     traffic, stable's last large enough sample stands;
//   - drift: monitoring's comparison of the canary's live window with
//     stable's (DriftComparer; the model needs monitoring.drift), the
//     worst PSI of the outputs and predicted classes against
//     max_drift_psi, failed only when also significant. Without drift
//     monitoring in the model's config the check is skipped; any other
//     failure of the comparison (a version not loaded, no window yet) is
//     inconclusive;
//   - accuracy ratio (with min_accuracy_ratio): the canary's accuracy on
//     the ground-truth feedback given in the interval over stable's
//     (FeedbackCounter; over Prometheus, infergate_feedback_total and
//     infergate_feedback_correct_total of every replica), with
//     Clopper–Pearson bounds (Bonferroni over the two); inconclusive
//     while either version has fewer than min_feedback answers in the
//     interval.
//
// Besides the phases (progressing, holding, promoted,
// rolled_back), a rollout paused by an operator is "paused"; its time
// does not count toward progress_deadline_seconds.
//
// Each check passes only when the canary is within its limit with
// confidence, fails only when it is beyond it with confidence, and is
// inconclusive otherwise: a low-traffic canary holds (phase holding)
// instead of passing or failing by luck. A step advances when every
// check passes and min_requests canary requests came; after threshold
// failed intervals the rollout rolls back (weight 0); after the last step
// passes it promotes (weight 100); progress_deadline_seconds without an
// advance rolls back too. POST .../rollout/{abort,promote,pause,resume}
// are the manual controls. At the end the document is rewritten to its
// final split with the outcome and history under status (persisted as
// routing.yaml where documents are); labels are not moved.
//
// Breakers belong to a compiled document: replacing the document, or a
// reload of the model's config, starts them closed.
//
// The router only decides among live versions; the repository keeps
// owning them and their labels. It never imports the protocol packages
// or monitoring: events go to an Observer.
package router
