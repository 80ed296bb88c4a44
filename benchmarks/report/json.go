package report

import (
	"encoding/json"
	"io"

	"github.com/infergate/infergate/benchmarks/suite"
)

func writeJSON(w io.Writer, res *suite.Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
