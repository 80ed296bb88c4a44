// Package packaging tests what ships beside the server: the Dockerfile
// (parsed with BuildKit's own parser, as no Docker engine runs here) and
// the Kubernetes and KServe manifests under configs/k8s (built with
// kustomize's Go API and decoded strictly into their k8s.io/api types),
// against the real infergate binary. It is a module of its own, so that
// the server's module does not depend on Kubernetes' packages.
package packaging
