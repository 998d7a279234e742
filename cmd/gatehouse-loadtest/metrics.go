package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// queueDelayMetric is the daemon's histogram of how long unary calls
// waited from their arrival on the connection to their handler's start
// (the delay its queue shedder judges).
const queueDelayMetric = "gatehouse_queue_delay_seconds"

// delayBuckets is a scrape of a Prometheus histogram: cumulative counts by
// upper bound (seconds), in the order served.
type delayBuckets struct {
	le    []float64
	count []float64
}

// scrapeQueueDelay reads the daemon's queue-delay histogram from its
// /metrics at addr (host:port of --metrics-addr).
func scrapeQueueDelay(ctx context.Context, addr string) (delayBuckets, error) {
	var b delayBuckets
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return b, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return b, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return b, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		rest, ok := strings.CutPrefix(line, queueDelayMetric+`_bucket{le="`)
		if !ok {
			continue
		}
		le, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		b.le, b.count = append(b.le, bound), append(b.count, n)
	}
	if len(b.le) == 0 {
		return b, fmt.Errorf("%s serves no %s histogram", addr, queueDelayMetric)
	}
	return b, nil
}

// since returns the buckets counted between o and b (a later scrape).
func (b delayBuckets) since(o delayBuckets) delayBuckets {
	d := delayBuckets{le: b.le, count: make([]float64, len(b.count))}
	for i := range b.count {
		d.count[i] = b.count[i]
		if i < len(o.count) {
			d.count[i] -= o.count[i]
		}
	}
	return d
}

// add returns the sum of two differences of the same histogram.
func (b delayBuckets) add(o delayBuckets) delayBuckets {
	if len(b.le) == 0 {
		return o
	}
	d := delayBuckets{le: b.le, count: make([]float64, len(b.count))}
	for i := range b.count {
		d.count[i] = b.count[i]
		if i < len(o.count) {
			d.count[i] += o.count[i]
		}
	}
	return d
}

// quantile returns the upper bound of the bucket holding the q-quantile
// (+Inf as -1), in microseconds.
func (b delayBuckets) quantile(q float64) float64 {
	if len(b.count) == 0 {
		return 0
	}
	total := b.count[len(b.count)-1]
	if total <= 0 {
		return 0
	}
	for i, c := range b.count {
		if c >= q*total {
			if b.le[i] > 1e300 {
				return -1
			}
			return b.le[i] * 1e6
		}
	}
	return -1
}

// shareOver returns the share of calls that waited longer than limit
// (rounded to the histogram's bucket bounds).
func (b delayBuckets) shareOver(limit time.Duration) float64 {
	if len(b.count) == 0 {
		return 0
	}
	total := b.count[len(b.count)-1]
	if total <= 0 {
		return 0
	}
	for i, le := range b.le {
		if le >= limit.Seconds() {
			return 1 - b.count[i]/total
		}
	}
	return 0
}
