package gateway

import (
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/infergate/infergate/monitoring"
)

// StatisticsReporter gives the statistics of a model's loaded versions
// (version 0: all); the monitoring package implements it.
type StatisticsReporter interface {
	Statistics(model string, version int64) []monitoring.VersionStatistics
}

// statistics answers Triton's statistics extension: GET
// /v2/models/stats (every model), /v2/models/{m}/stats (its loaded
// versions) and /v2/models/{m}/versions/{v}/stats, in Triton's JSON.
func (s *Server) statistics(ctx *fasthttp.RequestCtx) {
	type duration struct {
		Count uint64 `json:"count"`
		Ns    uint64 `json:"ns"`
	}
	type inferenceStats struct {
		Success       duration `json:"success"`
		Fail          duration `json:"fail"`
		Queue         duration `json:"queue"`
		ComputeInput  duration `json:"compute_input"`
		ComputeInfer  duration `json:"compute_infer"`
		ComputeOutput duration `json:"compute_output"`
		CacheHit      duration `json:"cache_hit"`
		CacheMiss     duration `json:"cache_miss"`
	}
	type modelStat struct {
		Name           string         `json:"name"`
		Version        string         `json:"version"`
		LastInference  int64          `json:"last_inference"`
		InferenceCount uint64         `json:"inference_count"`
		ExecutionCount uint64         `json:"execution_count"`
		InferenceStats inferenceStats `json:"inference_stats"`
		BatchStats     []struct{}     `json:"batch_stats"`
	}
	var names []string
	var version int64
	if name, ok := ctx.UserValue("model").(string); ok {
		m, err := s.repo.Model(name)
		if err != nil {
			s.fail(ctx, err)
			return
		}
		names = []string{m.Name}
		if vs, ok := ctx.UserValue("version").(string); ok {
			n, err := strconv.ParseInt(vs, 10, 64)
			if err != nil || n < 1 {
				s.fail(ctx, badRequest("invalid model version %q: want a positive integer", vs))
				return
			}
			if _, err := m.Version(n); err != nil {
				s.fail(ctx, err)
				return
			}
			version = n
		}
	} else {
		for _, m := range s.repo.Models() {
			names = append(names, m.Name)
		}
	}
	d := func(x monitoring.Duration) duration { return duration{x.Count, x.Ns} }
	out := struct {
		ModelStats []modelStat `json:"model_stats"`
	}{ModelStats: []modelStat{}}
	for _, name := range names {
		for _, st := range s.opts.Statistics.Statistics(name, version) {
			out.ModelStats = append(out.ModelStats, modelStat{
				Name: st.Model, Version: fmt.Sprint(st.Version), LastInference: st.LastInference,
				InferenceCount: st.InferenceCount, ExecutionCount: st.ExecutionCount, BatchStats: []struct{}{},
				InferenceStats: inferenceStats{Success: d(st.Success), Fail: d(st.Fail), Queue: d(st.Queue),
					ComputeInfer: d(st.ComputeInfer), CacheHit: d(st.CacheHit), CacheMiss: d(st.CacheMiss)},
			})
		}
	}
	s.writeJSON(ctx, out)
}
