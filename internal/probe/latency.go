package probe

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// recorder keeps a latency distribution in an HDR histogram, so its memory
// does not grow with the number of samples.
type recorder struct {
	h *hdrhistogram.Histogram
}

const (
	minTrackable = 1                       // ns
	maxTrackable = int64(10 * time.Minute) // ns
	sigFigs      = 3
)

func newRecorder() *recorder {
	return &recorder{h: hdrhistogram.New(minTrackable, maxTrackable, sigFigs)}
}

func (r *recorder) record(d time.Duration) {
	v := int64(d)
	if v < minTrackable {
		v = minTrackable
	}
	if v > maxTrackable {
		v = maxTrackable
	}
	_ = r.h.RecordValue(v)
}

// histogramBuckets is the number of bars a latency histogram is drawn with.
const histogramBuckets = 12

// summary turns the histogram into percentiles in microseconds and a
// handful of log-spaced buckets between the smallest and largest sample.
func (r *recorder) summary() Latency {
	n := r.h.TotalCount()
	if n == 0 {
		return Latency{}
	}
	us := func(ns int64) float64 { return math.Round(float64(ns)/100) / 10 }
	l := Latency{
		Count: n,
		P50:   us(r.h.ValueAtQuantile(50)),
		P90:   us(r.h.ValueAtQuantile(90)),
		P99:   us(r.h.ValueAtQuantile(99)),
		Max:   us(r.h.Max()),
		Mean:  math.Round(r.h.Mean()/100) / 10,
	}
	if n > 1 {
		l.Buckets = r.buckets(histogramBuckets)
	}
	return l
}

func (r *recorder) buckets(k int) []Bucket {
	lo, hi := float64(r.h.Min()), float64(r.h.Max())
	if lo < 1 {
		lo = 1
	}
	if hi <= lo {
		return []Bucket{{UpToUS: math.Ceil(hi/100) / 10, Count: r.h.TotalCount()}}
	}
	ratio := math.Pow(hi/lo, 1/float64(k))
	bounds := make([]int64, k)
	edge := lo
	for i := range bounds {
		edge *= ratio
		bounds[i] = int64(math.Ceil(edge))
	}
	bounds[k-1] = r.h.Max()
	out := make([]Bucket, k)
	for i := range out {
		// Up to the bound, rounded up to 0.1µs: "≤ UpToUS" holds.
		out[i].UpToUS = math.Ceil(float64(bounds[i])/100) / 10
	}
	for _, bar := range r.h.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := bar.From
		i := 0
		for i < k-1 && v > bounds[i] {
			i++
		}
		out[i].Count += bar.Count
	}
	return out
}

// atOrAbove counts the samples of at least d (to the histogram's
// precision: samples within a bucket that holds d count).
func (r *recorder) atOrAbove(d time.Duration) int64 {
	if r.h.TotalCount() == 0 || r.h.Max() < int64(d) {
		return 0
	}
	var n int64
	for _, bar := range r.h.Distribution() {
		if bar.To >= int64(d) {
			n += bar.Count
		}
	}
	return n
}
