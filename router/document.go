package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/infergate/infergate/errdefs"
	"gopkg.in/yaml.v3"
)

// Document is a model's routing document: config.yaml's routing section,
// <model>/routing.yaml, or the body of PUT .../routing. Its schema is an
// interface: users write it.
type Document struct {
	// Split is an A/B/n split over any number of targets, by version or
	// label, with positive weights (normalised). Empty: the default
	// version takes the traffic.
	Split []Target `json:"split,omitempty" yaml:"split,omitempty"`
	// Sticky assigns a request by a key (a header or a cookie) instead of
	// at random, so that the same key always reaches the same target.
	Sticky *Sticky `json:"sticky,omitempty" yaml:"sticky,omitempty"`
	// Overrides honours the x-model-version and x-model-label headers.
	// Default true.
	Overrides *bool `json:"overrides,omitempty" yaml:"overrides,omitempty"`
	// Shadow also sends a share of requests to another version, compares
	// the outputs and discards them.
	Shadow *Shadow `json:"shadow,omitempty" yaml:"shadow,omitempty"`
	// Fallback is where requests go while the breaker of the target the
	// policy chose is open.
	Fallback *Target `json:"fallback,omitempty" yaml:"fallback,omitempty"`
	// Breaker sets the per-version circuit breakers. Absent: no breaker.
	Breaker *Breaker `json:"breaker,omitempty" yaml:"breaker,omitempty"`
	// Rollout is a progressive delivery from stable to canary.
	Rollout *Rollout `json:"rollout,omitempty" yaml:"rollout,omitempty"`
	// Status keeps the outcome and history of the last rollout: the
	// controller writes it with the final split.
	Status *RolloutStatus `json:"status,omitempty" yaml:"status,omitempty"`
}

// Target names a version by number or label, with a weight in a split.
type Target struct {
	Version int64   `json:"version,omitempty" yaml:"version,omitempty"`
	Label   string  `json:"label,omitempty" yaml:"label,omitempty"`
	Weight  float64 `json:"weight,omitempty" yaml:"weight,omitempty"`
}

func (t Target) String() string {
	if t.Label != "" {
		return "label " + t.Label
	}
	return fmt.Sprintf("version %d", t.Version)
}

// Sticky names the request's key: a header or a cookie.
type Sticky struct {
	Header string `json:"header,omitempty" yaml:"header,omitempty"`
	Cookie string `json:"cookie,omitempty" yaml:"cookie,omitempty"`
	// Salt makes assignments of different experiments independent.
	// Default "<model>/default".
	Salt string `json:"salt,omitempty" yaml:"salt,omitempty"`
}

// Shadow mirrors a share of requests to a version.
type Shadow struct {
	Version int64   `json:"version,omitempty" yaml:"version,omitempty"`
	Label   string  `json:"label,omitempty" yaml:"label,omitempty"`
	Percent float64 `json:"percent,omitempty" yaml:"percent,omitempty"`
}

// Breaker sets a version's circuit breaker: it opens after
// ConsecutiveFailures execution failures in a row, or when at least
// MinRequests requests of the current minute failed at FailureRatio or
// more, and lets a probe through after OpenSeconds.
type Breaker struct {
	ConsecutiveFailures int     `json:"consecutive_failures,omitempty" yaml:"consecutive_failures,omitempty"`
	FailureRatio        float64 `json:"failure_ratio,omitempty" yaml:"failure_ratio,omitempty"`
	MinRequests         int     `json:"min_requests,omitempty" yaml:"min_requests,omitempty"`
	OpenSeconds         float64 `json:"open_seconds,omitempty" yaml:"open_seconds,omitempty"`
}

// Rollout is a progressive delivery from stable to canary.
type Rollout struct {
	Stable                  Target    `json:"stable" yaml:"stable"`
	Canary                  Target    `json:"canary" yaml:"canary"`
	Steps                   []float64 `json:"steps,omitempty" yaml:"steps,omitempty"`
	IntervalSeconds         float64   `json:"interval_seconds,omitempty" yaml:"interval_seconds,omitempty"`
	MinRequests             int       `json:"min_requests,omitempty" yaml:"min_requests,omitempty"`
	Threshold               int       `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	MaxErrorRate            float64   `json:"max_error_rate,omitempty" yaml:"max_error_rate,omitempty"`
	MaxP99Ratio             float64   `json:"max_p99_ratio,omitempty" yaml:"max_p99_ratio,omitempty"`
	MaxDriftPSI             float64   `json:"max_drift_psi,omitempty" yaml:"max_drift_psi,omitempty"`
	Confidence              float64   `json:"confidence,omitempty" yaml:"confidence,omitempty"`
	ProgressDeadlineSeconds float64   `json:"progress_deadline_seconds,omitempty" yaml:"progress_deadline_seconds,omitempty"`
	// MinAccuracyRatio, when positive, adds the feedback check: the
	// canary's accuracy on ground-truth feedback over stable's must be at
	// least this (e.g. 0.95). Default 0: no feedback check.
	MinAccuracyRatio float64 `json:"min_accuracy_ratio,omitempty" yaml:"min_accuracy_ratio,omitempty"`
	// MinFeedback is the fewest labelled answers each version needs in
	// an interval for the feedback check to decide; with fewer it is
	// inconclusive and the rollout holds. Default DefaultMinFeedback.
	MinFeedback int `json:"min_feedback,omitempty" yaml:"min_feedback,omitempty"`
	// StartedAt is the rollout's start. PUT .../routing stamps it when
	// absent, so that every replica that reads the shared document counts
	// its intervals from the same instant. A document written by hand
	// without it starts when each controller does.
	StartedAt *time.Time `json:"started_at,omitempty" yaml:"started_at,omitempty"`
	// PrometheusURL, when set, makes every replica judge each step from
	// the same figures: the canary's and stable's aggregated over every
	// replica that PrometheusSelector matches, queried from this
	// Prometheus at the step's pinned instant (StartedAt plus k
	// intervals) once ScrapeLagSeconds have passed. Empty: each replica
	// judges from what it saw itself (one replica).
	PrometheusURL string `json:"prometheus_url,omitempty" yaml:"prometheus_url,omitempty"`
	// PrometheusSelector is label matchers added to every query, such as
	// job="infergate",namespace="ml". Default: none.
	PrometheusSelector string `json:"prometheus_selector,omitempty" yaml:"prometheus_selector,omitempty"`
	// ScrapeLagSeconds is how long after a step's instant its figures are
	// queried, so that every replica's last scrape is in. Default 30.
	ScrapeLagSeconds float64 `json:"scrape_lag_seconds,omitempty" yaml:"scrape_lag_seconds,omitempty"`
}

// labelMatchers is what prometheus_selector may hold: label matchers,
// comma-separated, each name, an operator and a quoted value.
var labelMatchers = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*(,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(=|!=|=~|!~)\s*"(?:[^"\\]|\\.)*"\s*)*,?\s*$`)

// The defaults of a document.
const (
	DefaultConsecutiveFailures = 5
	DefaultFailureRatio        = 0.5
	DefaultMinRequests         = 20
	DefaultOpenSeconds         = 30
)

// Errors of documents.
var (
	// ErrInvalid is a document that does not validate; the message names
	// the field.
	ErrInvalid = errdefs.Sentinel(errdefs.Invalid, "invalid routing document")
	// ErrInvalidRequest is a request whose routing headers are malformed.
	ErrInvalidRequest = errdefs.Sentinel(errdefs.Invalid, "invalid request")
	// ErrNoRollout: the model has no rollout to report or control.
	ErrNoRollout = errdefs.Sentinel(errdefs.NotFound, "no rollout")
)

func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, path, fmt.Sprintf(format, args...))
}

// labelName is what a label may be called (as the repository's labels).
var labelName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)

// headerName is what a sticky header or cookie may be called.
var headerName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]{1,128}$`)

// ParseJSON decodes and validates a document given as JSON. Unknown
// fields are errors.
func ParseJSON(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the document", ErrInvalid)
	}
	return &d, d.Validate()
}

// ParseYAML decodes and validates a document given as YAML (routing.yaml,
// or config.yaml's routing section). Unknown fields are errors.
func ParseYAML(b []byte) (*Document, error) {
	var d Document
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&d); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return &d, d.Validate()
}

// Validate checks the document whole; the error names the field path.
func (d *Document) Validate() error {
	if d.Rollout != nil && len(d.Split) > 0 {
		return invalid("rollout", "a document has split or rollout, never both")
	}
	for i, t := range d.Split {
		if err := t.validate(fmt.Sprintf("split[%d]", i), true); err != nil {
			return err
		}
	}
	if s := d.Sticky; s != nil {
		switch {
		case (s.Header == "") == (s.Cookie == ""):
			return invalid("sticky", "give one of header or cookie")
		case s.Header != "" && !headerName.MatchString(s.Header):
			return invalid("sticky.header", "%q is not a header name", s.Header)
		case s.Cookie != "" && !headerName.MatchString(s.Cookie):
			return invalid("sticky.cookie", "%q is not a cookie name", s.Cookie)
		case len(s.Salt) > 256 || strings.IndexByte(s.Salt, 0) >= 0:
			return invalid("sticky.salt", "must be at most 256 bytes, without a 0 byte")
		}
	}
	if f := d.Fallback; f != nil {
		if err := f.validate("fallback", false); err != nil {
			return err
		}
		if d.Breaker == nil {
			return invalid("fallback", "needs a breaker: requests fall back while a target's breaker is open")
		}
	}
	if b := d.Breaker; b != nil {
		switch {
		case b.ConsecutiveFailures < 0:
			return invalid("breaker.consecutive_failures", "must not be negative, got %d", b.ConsecutiveFailures)
		case b.FailureRatio < 0 || b.FailureRatio > 1 || math.IsNaN(b.FailureRatio):
			return invalid("breaker.failure_ratio", "must be in [0, 1], got %v", b.FailureRatio)
		case b.MinRequests < 0:
			return invalid("breaker.min_requests", "must not be negative, got %d", b.MinRequests)
		case !(b.OpenSeconds >= 0 && b.OpenSeconds <= 86400):
			return invalid("breaker.open_seconds", "must be in [0, 86400], got %v", b.OpenSeconds)
		}
	}
	if s := d.Shadow; s != nil {
		if err := (Target{Version: s.Version, Label: s.Label}).validate("shadow", false); err != nil {
			return err
		}
		if !(s.Percent > 0 && s.Percent <= 100) {
			return invalid("shadow.percent", "must be in (0, 100], got %v", s.Percent)
		}
	}
	if r := d.Rollout; r != nil {
		if err := r.Stable.validate("rollout.stable", false); err != nil {
			return err
		}
		if err := r.Canary.validate("rollout.canary", false); err != nil {
			return err
		}
		if r.Stable == r.Canary {
			return invalid("rollout.canary", "is the stable target")
		}
		for i, w := range r.Steps {
			if !(w > 0 && w <= 100) || (i > 0 && w <= r.Steps[i-1]) {
				return invalid(fmt.Sprintf("rollout.steps[%d]", i), "steps are increasing weights in (0, 100], got %v", r.Steps)
			}
		}
		switch {
		case r.IntervalSeconds != 0 && !(r.IntervalSeconds >= 0.01 && r.IntervalSeconds <= 86400):
			return invalid("rollout.interval_seconds", "must be in [0.01, 86400], got %v", r.IntervalSeconds)
		case r.MinRequests < 0:
			return invalid("rollout.min_requests", "must not be negative, got %d", r.MinRequests)
		case r.Threshold < 0:
			return invalid("rollout.threshold", "must not be negative, got %d", r.Threshold)
		case !(r.MaxErrorRate >= 0 && r.MaxErrorRate <= 1):
			return invalid("rollout.max_error_rate", "must be in [0, 1], got %v", r.MaxErrorRate)
		case !(r.MaxP99Ratio >= 0) || math.IsInf(r.MaxP99Ratio, 0):
			return invalid("rollout.max_p99_ratio", "must be positive, got %v", r.MaxP99Ratio)
		case !(r.MaxDriftPSI >= 0) || math.IsInf(r.MaxDriftPSI, 0):
			return invalid("rollout.max_drift_psi", "must be positive, got %v", r.MaxDriftPSI)
		case !(r.MinAccuracyRatio >= 0 && r.MinAccuracyRatio <= 10):
			return invalid("rollout.min_accuracy_ratio", "must be in [0, 10], got %v", r.MinAccuracyRatio)
		case r.MinFeedback < 0:
			return invalid("rollout.min_feedback", "must not be negative, got %d", r.MinFeedback)
		case r.Confidence != 0 && !(r.Confidence >= 0.5 && r.Confidence < 1):
			return invalid("rollout.confidence", "must be in [0.5, 1), got %v", r.Confidence)
		case !(r.ProgressDeadlineSeconds >= 0 && r.ProgressDeadlineSeconds <= 30*86400):
			return invalid("rollout.progress_deadline_seconds", "must be in [0, 2592000], got %v", r.ProgressDeadlineSeconds)
		case !(r.ScrapeLagSeconds >= 0 && r.ScrapeLagSeconds <= 3600):
			return invalid("rollout.scrape_lag_seconds", "must be in [0, 3600], got %v", r.ScrapeLagSeconds)
		case r.PrometheusSelector != "" && !labelMatchers.MatchString(r.PrometheusSelector):
			return invalid("rollout.prometheus_selector", `must be label matchers such as job="infergate",namespace="ml", got %q`, r.PrometheusSelector)
		case r.PrometheusSelector != "" && r.PrometheusURL == "":
			return invalid("rollout.prometheus_selector", "needs prometheus_url")
		case r.StartedAt != nil && (r.StartedAt.IsZero() || r.StartedAt.Year() < 2000 || r.StartedAt.Year() > 9999):
			return invalid("rollout.started_at", "must be a time such as 2026-12-02T10:00:00Z, got %v", r.StartedAt)
		}
		if r.PrometheusURL != "" {
			u, err := url.Parse(r.PrometheusURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return invalid("rollout.prometheus_url", "must be an http or https URL such as http://prometheus:9090, got %q", r.PrometheusURL)
			}
		}
	}
	return nil
}

func (t Target) validate(path string, weighted bool) error {
	switch {
	case (t.Version == 0) == (t.Label == ""):
		return invalid(path, "give one of version or label")
	case t.Version < 0:
		return invalid(path+".version", "must be a positive version, got %d", t.Version)
	case t.Label != "" && !labelName.MatchString(t.Label):
		return invalid(path+".label", "%q is not a label", t.Label)
	case weighted && !(t.Weight > 0 && t.Weight <= 1e9):
		return invalid(path+".weight", "must be positive, got %v", t.Weight)
	case !weighted && t.Weight != 0:
		return invalid(path+".weight", "only split targets have a weight")
	}
	return nil
}
