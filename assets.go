// Package mpvx holds the files the binary carries: the pipelines and the
// sandbox client's configuration, so `mpvx demo` runs from any directory.
package mpvx

import "embed"

// Files are the shipped pipelines and configuration.
//
//go:embed pipelines/*.yaml config/observability.yaml config/sandbox
var Files embed.FS
