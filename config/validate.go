package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MinKeySecretLen is the shortest tenant key secret accepted (bytes).
const MinKeySecretLen = 16

// problems collects validation errors, each naming its key.
type problems []error

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *problems) positive(key string, d time.Duration) {
	if d <= 0 {
		p.add(key, "must be > 0, got %v", d)
	}
}

func (p *problems) atLeast(key string, n, lo int) {
	if n < lo {
		p.add(key, "must be >= %d, got %d", lo, n)
	}
}

func (p *problems) name(key, s string) {
	if s == "" {
		p.add(key, "must not be empty")
	} else if !nameRe.MatchString(s) {
		p.add(key, "must match %s, got %q", nameRe, s)
	}
}

// nameRe is what ids, groups and prefixes may contain: they end up in Kafka
// group ids, transactional ids and Redis keys, where spaces and colons are
// trouble.
var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Validate checks the whole configuration and returns every problem found,
// joined with errors.Join, each naming its key.
func (c Config) Validate() error {
	var p problems
	c.Kafka.validate(&p)
	c.Redis.validate(&p)
	c.Tenant.validate(&p)
	c.Processor.validate(&p)
	c.Sink.validate(&p)
	c.Simulate.validate(&p)
	c.Log.validate(&p)
	c.HTTP.validate(&p)
	return errors.Join(p...)
}

func (k Kafka) validate(p *problems) {
	for i, b := range k.Brokers {
		if err := hostPort(b); err != nil {
			p.add("kafka.brokers", "broker %d %q: %v", i, b, err)
		}
	}
	p.name("kafka.client_id", k.ClientID)
	if err := k.Topics.Validate(); err != nil {
		for _, e := range unjoin(err) {
			*p = append(*p, fmt.Errorf("config: kafka.topics.%w", e))
		}
	}
	if k.Partitions < 1 {
		p.add("kafka.partitions", "must be >= 1, got %d", k.Partitions)
	}
	if k.ReplicationFactor < 1 && k.ReplicationFactor != -1 {
		p.add("kafka.replication_factor", "must be >= 1 (or -1 for the broker default), got %d", k.ReplicationFactor)
	}
	if u := k.SchemaRegistry.URL; u != "" {
		pu, err := url.Parse(u)
		if err != nil {
			p.add("kafka.schema_registry.url", "%v", err)
		} else if (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			p.add("kafka.schema_registry.url", "must be an http(s) URL with a host, got %q", u)
		}
	}
	p.name("kafka.transactional_id_prefix", k.TransactionalIDPrefix)
	if k.SessionTimeout < time.Second {
		p.add("kafka.session_timeout", "must be at least 1s, got %s", k.SessionTimeout)
	}
	if k.TransactionTimeout < time.Second {
		p.add("kafka.transaction_timeout", "must be at least 1s, got %s", k.TransactionTimeout)
	}
	if k.RebalanceTimeout < time.Second {
		p.add("kafka.rebalance_timeout", "must be at least 1s, got %s", k.RebalanceTimeout)
	}
	switch k.SASL.Mechanism {
	case SASLNone:
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if k.SASL.Username == "" {
			p.add("kafka.sasl.username", "must be set when kafka.sasl.mechanism is %s", k.SASL.Mechanism)
		}
	default:
		p.add("kafka.sasl.mechanism", "must be one of none, plain, scram-sha-256, scram-sha-512, got %q", k.SASL.Mechanism)
	}
	k.TLS.validate(p, "kafka.tls")
}

func (t TLS) validate(p *problems, prefix string) {
	files := []struct{ key, path string }{
		{prefix + ".ca_file", t.CAFile},
		{prefix + ".cert_file", t.CertFile},
		{prefix + ".key_file", t.KeyFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if !t.Enabled {
			// Almost certainly a mistake: the files would be ignored.
			p.add(f.key, "set but %s.enabled is false", prefix)
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			p.add(f.key, "%v", err)
		} else if st.IsDir() {
			p.add(f.key, "%s is a directory", f.path)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		p.add(prefix+".cert_file", "cert_file and key_file must be set together")
	}
}

func (r Redis) validate(p *problems) {
	if r.Addr != "" {
		if err := hostPort(r.Addr); err != nil {
			p.add("redis.addr", "%q: %v", r.Addr, err)
		}
	}
	seen := map[string]int{}
	for i, a := range r.ClusterAddrs {
		if err := hostPort(a); err != nil {
			p.add("redis.cluster_addrs", "node %d %q: %v", i, a, err)
		} else if j, dup := seen[a]; dup {
			p.add("redis.cluster_addrs", "node %d %q is node %d again", i, a, j)
		} else {
			seen[a] = i
		}
	}
	if r.Addr != "" && len(r.ClusterAddrs) > 0 {
		p.add("redis.cluster_addrs", "mutually exclusive with redis.addr (%q): set redis.addr for one Redis, redis.cluster_addrs for a Redis Cluster", r.Addr)
	}
	if r.DB < 0 {
		p.add("redis.db", "must be >= 0, got %d", r.DB)
	} else if r.DB != 0 && len(r.ClusterAddrs) > 0 {
		p.add("redis.db", "must be 0 with redis.cluster_addrs (a Redis Cluster has only database 0), got %d", r.DB)
	}
	p.name("redis.key_prefix", r.KeyPrefix)
	r.TLS.validate(p, "redis.tls")
	p.positive("redis.dial_timeout", r.DialTimeout)
}

func (t Tenant) validate(p *problems) {
	p.name("tenant.id", t.ID)
	if t.KeySecret.IsSet() && len(t.KeySecret) < MinKeySecretLen {
		// Never echo the secret, not even its prefix.
		p.add("tenant.key_secret", "must be at least %d bytes, got %d", MinKeySecretLen, len(t.KeySecret))
	}
}

func (pr Processor) validate(p *problems) {
	p.name("processor.group", pr.Group)
	p.positive("processor.window.size", pr.Window.Size)
	p.atLeast("processor.window.max_keys", pr.Window.MaxKeys, 1)
	if pr.Window.Grace < 0 {
		p.add("processor.window.grace", "must be >= 0, got %v", pr.Window.Grace)
	}
	p.atLeast("processor.context_keys", pr.ContextKeys, 1)
	p.atLeast("processor.enrol_keys", pr.EnrolKeys, 1)
	p.atLeast("processor.warmup_keys", pr.WarmupKeys, 0)
	if pr.IdleReset < 0 {
		p.add("processor.idle_reset", "must be >= 0 (0 disables), got %v", pr.IdleReset)
	} else if pr.IdleReset > 0 && pr.IdleReset < pr.Window.Size {
		p.add("processor.idle_reset", "must be 0 (disabled) or at least processor.window.size (%v), got %v", pr.Window.Size, pr.IdleReset)
	}
	p.atLeast("processor.max_sessions", pr.MaxSessions, 1)
	p.atLeast("processor.max_poll_records", pr.MaxPollRecords, 1)
	lockOK := unitOpen(p, "processor.lock_threshold", pr.LockThreshold)
	stepOK := unitOpen(p, "processor.stepup_threshold", pr.StepupThreshold)
	if lockOK && stepOK && pr.LockThreshold >= pr.StepupThreshold {
		p.add("processor.lock_threshold", "must be < processor.stepup_threshold (%v), got %v", pr.StepupThreshold, pr.LockThreshold)
	}
	// Two keys give one gap; the rule needs at least two gaps to say
	// "consistently machine speed".
	p.atLeast("processor.injection.min_keys", pr.Injection.MinKeys, 3)
	p.positive("processor.injection.max_gap", pr.Injection.MaxGap)
}

func unitOpen(p *problems, key string, v float64) bool {
	if !(v > 0 && v < 1) { // also catches NaN
		p.add(key, "must be in (0,1), got %v", v)
		return false
	}
	return true
}

func (s Sink) validate(p *problems) {
	p.name("sink.group", s.Group)
	p.positive("sink.lock_command_ttl", s.LockCommandTTL)
	if s.LockSigningKey.IsSet() {
		if k, err := hex.DecodeString(s.LockSigningKey.Reveal()); err != nil || len(k) < 32 {
			p.add("sink.lock_signing_key", "must be at least 32 bytes, hex encoded")
		}
	}
	if s.LockSigningKeyID == "" || strings.ContainsAny(s.LockSigningKeyID, " \t\n") {
		p.add("sink.lock_signing_key_id", "must be a non-empty word, got %q", s.LockSigningKeyID)
	}
}

func (s Simulate) validate(p *problems) {
	p.atLeast("simulate.persons", s.Persons, 1)
	if !(s.Rate >= 0) {
		p.add("simulate.rate", "must be >= 0 (0 = as fast as possible), got %v", s.Rate)
	}
}

func (l Log) validate(p *problems) {
	switch strings.ToLower(l.Level) {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level", "must be one of debug, info, warn, error, got %q", l.Level)
	}
	switch strings.ToLower(l.Format) {
	case "text", "json":
	default:
		p.add("log.format", "must be text or json, got %q", l.Format)
	}
}

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if host == "" || strings.TrimSpace(host) != host {
		return fmt.Errorf("want host:port, host %q is invalid", host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q must be a number in 1..65535", port)
	}
	return nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func (h HTTP) validate(p *problems) {
	if h.Addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		p.add("http.addr", "want [host]:port, got %q: %v", h.Addr, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		p.add("http.addr", "port %q must be a number in 0..65535", port)
	}
}
