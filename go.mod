module github.com/mpvx/mpvx

go 1.26.4

require (
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/redpanda-data/benthos/v4 v4.76.0 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/shopspring/decimal v1.6.0 // indirect
	github.com/urfave/cli/v2 v2.27.7 // indirect
	github.com/xrash/smetrics v0.0.0-20240521201337-686a1a2994c1 // indirect
	golang.org/x/time v0.16.0 // indirect
)
