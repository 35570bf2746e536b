module github.com/mpvx/mpvx

go 1.26.4

require (
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/redpanda-data/benthos/v4 v4.76.0 // indirect
	github.com/shopspring/decimal v1.6.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
