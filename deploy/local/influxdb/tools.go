//go:build tools

// Package tools pins the two commands this module builds; it is never compiled.
package tools

import (
	_ "github.com/influxdata/influxdb/v2/cmd/influxd"
	_ "github.com/influxdata/pkg-config"
)
