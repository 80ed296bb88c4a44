// Package console holds infergate's ops console: one web page, its
// script and style, and the one vendored library (uPlot, for the charts),
// embedded in the binary so that the console needs no build step and no
// internet. The gateway serves Files under /console/ as an admin
// endpoint. The page reads only the JSON admin API: every figure it
// shows, and every change it makes, goes through an endpoint the README
// documents.
package console

import "embed"

// Files are the console's files: index.html, console.js, console.css and
// vendor/.
//
//go:embed index.html console.js console.css vendor/uplot-1.6.32/uPlot.iife.min.js vendor/uplot-1.6.32/uPlot.min.css vendor/uplot-1.6.32/LICENSE
var Files embed.FS
