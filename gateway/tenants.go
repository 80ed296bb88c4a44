package gateway

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"github.com/infergate/infergate/errdefs"
)

// Tenant is an application sharing the gateway, with limits of its own.
// A request names its tenant in the TenantHeader; a tenant named
// OtherTenant, when configured, gives its limits to every request that
// names no configured tenant.
type Tenant struct {
	Name string
	// Rate is the requests per second allowed on average (a token
	// bucket), Burst the bucket's size. 0: no rate limit. Burst defaults
	// to the rate rounded up, at least 1.
	Rate  float64
	Burst int
	// MaxConcurrency bounds its inference requests in flight. 0: none.
	MaxConcurrency int
	// Priority is the batching priority level its requests get (1 is
	// the highest); a request's own priority may lower it, never raise
	// it. 0: the model's default.
	Priority int
	// Models it may call; empty: every model.
	Models []string
}

// OtherTenant names the limits of the requests of no configured tenant,
// and their label value in metrics.
const OtherTenant = "other"

// DefaultTenantHeader is the header that names a request's tenant.
const DefaultTenantHeader = "X-Tenant"

// TenantObserver, when the RequestObserver implements it, is told of
// each request a tenant limit refused: reason is rate, concurrency or
// model; tenant is a configured name or OtherTenant.
type TenantObserver interface {
	TenantRejected(tenant, reason string)
}

type tenantState struct {
	Tenant
	limiter  *rate.Limiter // nil: no rate limit
	inflight atomic.Int64
	models   map[string]bool // nil: all
}

// tenants applies the configured tenants' limits.
type tenants struct {
	header string
	key    string // header in lower case: the gRPC metadata key
	byName map[string]*tenantState
	other  *tenantState // nil: requests of no configured tenant are not limited
}

func newTenants(header string, list []Tenant) (*tenants, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if header == "" {
		header = DefaultTenantHeader
	}
	ts := &tenants{header: header, key: strings.ToLower(header), byName: map[string]*tenantState{}}
	for i, t := range list {
		switch {
		case t.Name == "":
			return nil, fmt.Errorf("tenant %d: a name is required", i)
		case ts.byName[t.Name] != nil:
			return nil, fmt.Errorf("tenant %q: defined twice", t.Name)
		case t.Rate < 0 || math.IsNaN(t.Rate) || math.IsInf(t.Rate, 0) || t.Burst < 0 || t.MaxConcurrency < 0 || t.Priority < 0:
			return nil, fmt.Errorf("tenant %q: rate, burst, max_concurrency and priority must not be negative", t.Name)
		}
		st := &tenantState{Tenant: t}
		if t.Rate > 0 {
			burst := t.Burst
			if burst == 0 {
				burst = max(1, int(math.Ceil(t.Rate)))
			}
			st.limiter = rate.NewLimiter(rate.Limit(t.Rate), burst)
		}
		if len(t.Models) > 0 {
			st.models = map[string]bool{}
			for _, m := range t.Models {
				st.models[m] = true
			}
		}
		ts.byName[t.Name] = st
		if t.Name == OtherTenant {
			ts.other = st
		}
	}
	return ts, nil
}

// admit applies the limits of a request's tenant to a request for
// model, and returns the tenant (nil: no limits apply) to release when
// the request ends. The tenant is name (its inference token's) or, when
// name is "", the one that ctx's tenant header names.
func (ts *tenants) admit(ctx *fasthttp.RequestCtx, name, model string, obs RequestObserver) (*tenantState, error) {
	if ts == nil {
		return nil, nil
	}
	return ts.admitName(name, ctx.Request.Header.Peek(ts.header), model, obs)
}

// admitName is admit for a tenant named name, else by header (the tenant
// header's value).
func (ts *tenants) admitName(name string, header []byte, model string, obs RequestObserver) (*tenantState, error) {
	if ts == nil {
		return nil, nil
	}
	var st *tenantState
	if name != "" {
		st = ts.byName[name]
	} else {
		st = ts.byName[string(header)]
	}
	if st == nil {
		st = ts.other
	}
	if st == nil {
		return nil, nil
	}
	refuse := func(reason string, err error) (*tenantState, error) {
		if o, ok := obs.(TenantObserver); ok {
			o.TenantRejected(st.Name, reason)
		}
		return nil, err
	}
	if st.models != nil && !st.models[model] {
		return refuse("model", forbidden(fmt.Sprintf("tenant %q may not call model %q", st.Name, model)))
	}
	if st.limiter != nil && !st.limiter.Allow() {
		retry := time.Duration(math.Ceil(1/st.Rate)) * time.Second
		return refuse("rate", &errdefs.Error{Kind: errdefs.Throttled, RetryAfter: max(retry, time.Second),
			Msg: fmt.Sprintf("tenant %q is over its rate of %g requests per second: retry later", st.Name, st.Rate)})
	}
	if st.MaxConcurrency > 0 && st.inflight.Add(1) > int64(st.MaxConcurrency) {
		st.inflight.Add(-1)
		return refuse("concurrency", &errdefs.Error{Kind: errdefs.Throttled, RetryAfter: time.Second,
			Msg: fmt.Sprintf("tenant %q has its limit of %d requests in flight: retry later", st.Name, st.MaxConcurrency)})
	}
	return st, nil
}

// release ends an admitted request of st (nil: none).
func (st *tenantState) release() {
	if st != nil && st.MaxConcurrency > 0 {
		st.inflight.Add(-1)
	}
}

// priority is the batching priority of a request of st that asked for
// p (0: none): never above the tenant's (a lower level is a higher
// priority).
func (st *tenantState) priority(p int64) int64 {
	if st == nil || st.Priority == 0 {
		return p
	}
	if t := int64(st.Priority); p == 0 || p < t {
		return t
	}
	return p
}

// ValidateTenants reports whether the tenants can be used.
func ValidateTenants(list []Tenant) error {
	_, err := newTenants("", list)
	return err
}
