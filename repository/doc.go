// Package repository owns the lifecycle of model versions: it scans a model
// repository laid out as <root>/<model>/<version>/model.onnx, reads each
// model's optional config.yaml (Triton's field names), loads the versions
// its version policy selects onto ONNX Runtime, and answers which versions
// exist and which are ready.
//
// A version is built completely (session created, signature resolved)
// before it becomes visible. A model or version that fails to load never
// stops the others: it is kept with state UNAVAILABLE and the reason.
//
// Paths never leave the repository: model names are validated, and
// symbolic links that resolve outside the root are refused.
//
// This package must never import the protocol (gateway) or routing layers.
package repository
