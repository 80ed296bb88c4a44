// Package monitoring turns infergate's events into Prometheus metrics and
// watches the inputs and predictions of model versions for drift.
package monitoring
