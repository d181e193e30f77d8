package service

import "github.com/prometheus/client_golang/prometheus"

// Counter is a Prometheus counter read from a running total when scraped,
// so a component keeps one source of truth (its atomic counters).
func Counter(name, help string, total func() int64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(total()) })
}

// Register registers every collector, stopping at the first error.
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
