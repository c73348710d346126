package otlptest

import (
	"encoding/hex"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Span is one received span with its resource and scope, attribute values rendered
// as strings.
type Span struct {
	// Protocol is how it arrived: ProtocolGRPC or ProtocolHTTPProtobuf.
	Protocol string
	// Service is the resource's service.name.
	Service  string
	Resource map[string]string
	Scope    string

	TraceID, SpanID, ParentSpanID string
	Name                          string
	// Kind is "server", "client", "internal", "producer" or "consumer".
	Kind       string
	Attributes map[string]string
	// Links are the span contexts the span links to.
	Links      []SpanRef
	Start, End time.Time
	// Status is "", "ok" or "error".
	Status string
}

// SpanRef names a span: a link's target.
type SpanRef struct {
	TraceID, SpanID string
}

// Point is one received metric data point with its metric, resource and scope.
type Point struct {
	Protocol   string
	Service    string
	Resource   map[string]string
	Scope      string
	Metric     string
	Unit       string
	Attributes map[string]string
	// Value is a sum's or gauge's value, or a histogram's sum.
	Value float64
	// Count is a histogram's count; 0 for sums and gauges.
	Count uint64
	Time  time.Time
}

func flattenSpans(req *collectortrace.ExportTraceServiceRequest, protocol string) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		res := attributes(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				span := Span{
					Protocol:     protocol,
					Service:      res["service.name"],
					Resource:     res,
					Scope:        ss.GetScope().GetName(),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Name:         s.GetName(),
					Kind:         spanKind(s.GetKind()),
					Attributes:   attributes(s.GetAttributes()),
					Start:        unixNanoTime(s.GetStartTimeUnixNano()),
					End:          unixNanoTime(s.GetEndTimeUnixNano()),
					Status:       spanStatus(s.GetStatus().GetCode()),
				}
				for _, l := range s.GetLinks() {
					span.Links = append(span.Links, SpanRef{
						TraceID: hex.EncodeToString(l.GetTraceId()),
						SpanID:  hex.EncodeToString(l.GetSpanId()),
					})
				}
				out = append(out, span)
			}
		}
	}
	return out
}

func spanKind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	default:
		return "internal"
	}
}

func spanStatus(c tracepb.Status_StatusCode) string {
	switch c {
	case tracepb.Status_STATUS_CODE_OK:
		return "ok"
	case tracepb.Status_STATUS_CODE_ERROR:
		return "error"
	default:
		return ""
	}
}

func flattenPoints(req *collectormetrics.ExportMetricsServiceRequest, protocol string) []Point {
	var out []Point
	for _, rm := range req.GetResourceMetrics() {
		res := attributes(rm.GetResource().GetAttributes())
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				base := Point{
					Protocol: protocol,
					Service:  res["service.name"],
					Resource: res,
					Scope:    sm.GetScope().GetName(),
					Metric:   m.GetName(),
					Unit:     m.GetUnit(),
				}
				add := func(attrs []*commonpb.KeyValue, value float64, count, unixNano uint64) {
					p := base
					p.Attributes = attributes(attrs)
					p.Value, p.Count = value, count
					p.Time = unixNanoTime(unixNano)
					out = append(out, p)
				}
				number := func(dp *metricspb.NumberDataPoint) float64 {
					if v, ok := dp.GetValue().(*metricspb.NumberDataPoint_AsInt); ok {
						return float64(v.AsInt)
					}
					return dp.GetAsDouble()
				}
				switch d := m.GetData().(type) {
				case *metricspb.Metric_Sum:
					for _, dp := range d.Sum.GetDataPoints() {
						add(dp.GetAttributes(), number(dp), 0, dp.GetTimeUnixNano())
					}
				case *metricspb.Metric_Gauge:
					for _, dp := range d.Gauge.GetDataPoints() {
						add(dp.GetAttributes(), number(dp), 0, dp.GetTimeUnixNano())
					}
				case *metricspb.Metric_Histogram:
					for _, dp := range d.Histogram.GetDataPoints() {
						add(dp.GetAttributes(), dp.GetSum(), dp.GetCount(), dp.GetTimeUnixNano())
					}
				case *metricspb.Metric_ExponentialHistogram:
					for _, dp := range d.ExponentialHistogram.GetDataPoints() {
						add(dp.GetAttributes(), dp.GetSum(), dp.GetCount(), dp.GetTimeUnixNano())
					}
				case *metricspb.Metric_Summary:
					for _, dp := range d.Summary.GetDataPoints() {
						add(dp.GetAttributes(), dp.GetSum(), dp.GetCount(), dp.GetTimeUnixNano())
					}
				}
			}
		}
	}
	return out
}

// LastPoints keeps, of each series (service, metric and attributes), the point
// received last: the current value of a cumulative metric.
func LastPoints(points []Point) []Point {
	index := map[string]int{}
	var out []Point
	for _, p := range points {
		key := p.Service + "\x00" + p.Metric + "\x00" + attributeKey(p.Attributes)
		if i, ok := index[key]; ok {
			out[i] = p
			continue
		}
		index[key] = len(out)
		out = append(out, p)
	}
	return out
}

func attributeKey(attrs map[string]string) string {
	var b strings.Builder
	// A fixed order makes equal sets equal keys.
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(attrs[k])
		b.WriteByte('\x00')
	}
	return b.String()
}

func attributes(kvs []*commonpb.KeyValue) map[string]string {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[kv.GetKey()] = anyString(kv.GetValue())
	}
	return out
}

// anyString renders an attribute value as a string: scalars as Go would print them,
// arrays as comma-separated lists.
func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		parts := make([]string, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			parts = append(parts, anyString(e))
		}
		return strings.Join(parts, ",")
	default:
		return ""
	}
}

// unixNanoTime is an OTLP timestamp as a time. OTLP counts nanoseconds in a uint64; a
// value past what time.Unix takes (the year 2262) comes out as the latest time it can.
func unixNanoTime(n uint64) time.Time {
	if n > math.MaxInt64 {
		n = math.MaxInt64
	}
	return time.Unix(0, int64(n))
}
