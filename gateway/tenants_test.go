package gateway

import (
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/errdefs"
)

// TestTenantConcurrencyAndPriority: a tenant's requests in flight are
// bounded, and its priority level is a ceiling a request may only lower.
func TestTenantConcurrencyAndPriority(t *testing.T) {
	ts, err := newTenants("", []Tenant{{Name: "a", MaxConcurrency: 2, Priority: 2}})
	if err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set(DefaultTenantHeader, "a")
	first, err1 := ts.admit(&ctx, "", "m", nil)
	second, err2 := ts.admit(&ctx, "", "m", nil)
	_, err3 := ts.admit(&ctx, "", "m", nil)
	if err1 != nil || err2 != nil || errdefs.KindOf(err3) != errdefs.Throttled {
		t.Fatalf("got %v, %v, %v; want two admitted, the third throttled", err1, err2, err3)
	}
	first.release()
	if _, err := ts.admit(&ctx, "", "m", nil); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	second.release()
	for _, tc := range []struct{ asked, want int64 }{{0, 2}, {1, 2}, {2, 2}, {3, 3}} {
		if got := first.priority(tc.asked); got != tc.want {
			t.Errorf("priority(%d) = %d, want %d", tc.asked, got, tc.want)
		}
	}
	var none *tenantState
	if none.priority(1) != 1 {
		t.Error("no tenant changed the priority")
	}
	for _, bad := range [][]Tenant{{{Name: ""}}, {{Name: "a"}, {Name: "a"}}, {{Name: "a", Rate: -1}}} {
		if ValidateTenants(bad) == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}
