// Package split is the traffic split of a model's router: it picks one of
// n targets (the model's versions, in the order given) by positive
// weights, either at random for a request without a key (Split.Random) or
// by a sticky key (Bucket, then Split.Sticky), so that one user keeps
// seeing one version.
//
// It is pure arithmetic: it must never start goroutines, take locks, do
// I/O, read clocks, keep global state or draw randomness itself (the
// caller passes a uniform uint64 from math/rand/v2's rand.Uint64), and
// Random, Bucket and Sticky must never allocate.
//
// # Random assignment
//
// Random picks target i with probability Share(i), to within the 2^-53
// precision of a float64 cumulative share: a target whose share is below
// 2^-64 is never picked at random.
//
// # Sticky assignment
//
// A key's bucket is the 64-bit xxHash (XXH64, seed 0) of the salt, a 0
// byte and the key, mod Buckets: a pure function of salt and key, the
// same in every process, on every machine and with every Go version.
// Target i owns the consecutive buckets [b_i, b_{i+1}), with b_0 = 0,
// b_n = Buckets and b_i = round(Buckets × (Share(0) + … + Share(i-1))),
// moved as little as needed so that every target owns at least one bucket.
// Sticky shares are therefore quantised to 1/Buckets (0.01 %), a target
// whose weight rounds to no bucket still gets one, and New refuses more
// than Buckets targets.
//
// # Ramping
//
// Targets own their bucket ranges in list order, so a rollout ramps the
// last target:
//
//   - With two targets, stable first and canary last, raising the canary's
//     weight only moves keys from stable to canary, never back: a key on
//     the canary at one weight is on the canary at every higher weight.
//     Lowering the canary's weight only moves keys back to stable.
//   - With n > 2 targets, raising the weight of the last target while the
//     others keep their weights (or their relative weights) moves keys only
//     toward it: no key leaves the last target, and no key's target index
//     ever decreases. All the earlier ranges shrink toward bucket 0,
//     though, so a key can also move from one earlier target to a later
//     earlier one (target 0 to target 1, say) rather than to the last.
//   - Changing the share of any target but the last shifts the range
//     bounds of every target after it, so keys can move between those
//     targets in either direction: raising target 0's weight in
//     [50, 30, 20] to 60 moves keys from target 1 to target 0 and from
//     target 2 to target 1. Only the last target ramps monotonically; put
//     the version being rolled out last.
//
// The ramp property is about Sticky only; Random has no memory.
//
// # Salts
//
// Assignments with different salts are independent: a key's bucket under
// salt A says nothing about its bucket under salt B. Give each model its
// own salt (its name, say) so that one user does not land on the canary of
// every model at once, and keep a model's salt fixed for the life of its
// rollout: changing it reassigns every key. A salt should not contain a 0
// byte, or two (salt, key) pairs can hash the same bytes (salt "a\x00b"
// with key "c", and salt "a" with key "b\x00c").
package split
