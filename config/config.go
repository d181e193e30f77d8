// Package config is Vigil's configuration: typed structs with defaults,
// loaded with viper from a YAML file, VIGIL_* environment variables and
// command-line flags (in rising precedence), then validated.
//
// Every setting has one key, e.g. processor.window.size. The same key is the
// YAML path, the flag name (--processor.window.size) and, upper-cased with
// dots turned into underscores and prefixed with VIGIL_, the environment
// variable (VIGIL_PROCESSOR_WINDOW_SIZE). Lists from the environment or flags
// are comma separated (VIGIL_KAFKA_BROKERS=a:9092,b:9092). Durations are Go
// duration strings ("5s", "30ms"); a bare number is refused rather than read
// as nanoseconds.
//
// Unknown keys are errors wherever they come from: a typo in the file, a
// --kafka.borkers flag or VIGIL_KAFKA_BORKERS in the environment is refused
// with its name, because a silently ignored setting is worse than a failed
// start. Errors name the key and the reason, e.g.
//
//	config: processor.window.size: must be > 0, got -5s
//
// example.yaml in this directory documents every key with its default.
package config

import (
	"time"

	"github.com/vigil-auth/vigil/topics"
)

// Config is the whole configuration.
type Config struct {
	Kafka     Kafka     `mapstructure:"kafka"`
	Redis     Redis     `mapstructure:"redis"`
	Tenant    Tenant    `mapstructure:"tenant"`
	Processor Processor `mapstructure:"processor"`
	Sink      Sink      `mapstructure:"sink"`
	Simulate  Simulate  `mapstructure:"simulate"`
	Log       Log       `mapstructure:"log"`
	HTTP      HTTP      `mapstructure:"http"`
}

// Kafka configures the Kafka clients and topic creation.
type Kafka struct {
	// Brokers are seed brokers as host:port. Empty means "start an embedded
	// in-process broker" (internal/kafkax), which is for demos and tests
	// only: it keeps data in memory and binds 127.0.0.1.
	Brokers  []string `mapstructure:"brokers"`
	ClientID string   `mapstructure:"client_id"`
	// Topics are the topic names per role.
	Topics topics.Names `mapstructure:"topics"`
	// Partitions and ReplicationFactor are used only when Vigil creates
	// missing topics. The replication factor defaults to 1 so that the demo
	// works on one broker; production clusters want 3. -1 means "the
	// broker's default".
	Partitions        int32 `mapstructure:"partitions"`
	ReplicationFactor int16 `mapstructure:"replication_factor"`
	// SchemaRegistry is optional: without it records use Avro single-object
	// encoding, with it the Confluent wire format.
	SchemaRegistry SchemaRegistry `mapstructure:"schema_registry"`
	// TransactionalIDPrefix prefixes the transactional ids of exactly-once
	// producers; instances append their own stable suffix.
	TransactionalIDPrefix string `mapstructure:"transactional_id_prefix"`
	// SessionTimeout is the consumer-group session timeout of the
	// processors and sinks: how long a crashed instance keeps its
	// partitions before the group gives them to another. Default 45 s;
	// the broker bounds it (group.min/max.session.timeout.ms).
	SessionTimeout time.Duration `mapstructure:"session_timeout"`
	// RebalanceTimeout is how long members may take to rejoin once a
	// rebalance began (finishing their transaction). Default 60 s.
	RebalanceTimeout time.Duration `mapstructure:"rebalance_timeout"`
	// TransactionTimeout is how long the broker lets an exactly-once
	// transaction stay open before aborting it: it bounds how long the
	// partitions of an instance that died mid-transaction wait before
	// another instance can resume them. Keep it below SessionTimeout.
	// Default 40 s.
	TransactionTimeout time.Duration `mapstructure:"transaction_timeout"`
	SASL               SASL          `mapstructure:"sasl"`
	TLS                TLS           `mapstructure:"tls"`
}

// SchemaRegistry locates a Confluent-compatible schema registry.
type SchemaRegistry struct {
	URL string `mapstructure:"url"`
}

// SASL mechanisms.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// SASL configures SASL authentication to Kafka.
type SASL struct {
	// Mechanism is none, plain, scram-sha-256 or scram-sha-512.
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  Secret `mapstructure:"password"`
}

// TLS configures a TLS client connection (Kafka or Redis).
type TLS struct {
	Enabled bool `mapstructure:"enabled"`
	// CAFile is a PEM bundle of CAs to trust instead of the system pool.
	CAFile string `mapstructure:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and key (mutual TLS);
	// both or neither.
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// InsecureSkipVerify disables server certificate verification. Tests only.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// Redis configures the profile store.
type Redis struct {
	// Addr is host:port of an existing Redis. Empty (and no ClusterAddrs)
	// means "start a local redis-server, or fall back to in-process
	// miniredis" (internal/redisx), for demos and tests only.
	Addr string `mapstructure:"addr"`
	// ClusterAddrs are seed nodes (host:port) of a Redis Cluster; the client
	// discovers the other nodes from them, so a few are enough. Mutually
	// exclusive with Addr. Username, Password, TLS and DialTimeout apply to
	// every node; DB must be 0 (a cluster has only database 0).
	ClusterAddrs []string `mapstructure:"cluster_addrs"`
	Username     string   `mapstructure:"username"`
	Password     Secret   `mapstructure:"password"`
	DB           int      `mapstructure:"db"`
	// KeyPrefix is prepended to every key Vigil writes, so that several
	// deployments can share a Redis.
	KeyPrefix   string        `mapstructure:"key_prefix"`
	TLS         TLS           `mapstructure:"tls"`
	DialTimeout time.Duration `mapstructure:"dial_timeout"`
}

// External reports whether an existing Redis or Redis Cluster is
// configured (redis.addr or redis.cluster_addrs), as opposed to the local
// demo fallbacks.
func (r Redis) External() bool { return r.Addr != "" || len(r.ClusterAddrs) > 0 }

// Tenant identifies the tenant and holds its key-hashing secret.
type Tenant struct {
	ID string `mapstructure:"id"`
	// KeySecret keys the per-tenant hash of key identities (package
	// keytoken). At least 16 bytes when set. Never logged: Secret redacts
	// itself. Prefer VIGIL_TENANT_KEY_SECRET to writing it into a file.
	KeySecret Secret `mapstructure:"key_secret"`
}

// Processor configures the windowing/scoring processors.
type Processor struct {
	// Group is the Kafka consumer group.
	Group  string `mapstructure:"group"`
	Window Window `mapstructure:"window"`
	// ContextKeys is how many recent keystrokes a decision looks back over.
	ContextKeys int `mapstructure:"context_keys"`
	// EnrolKeys is how many keystrokes of a user are needed before the
	// profile is trusted enough to lock on.
	EnrolKeys int `mapstructure:"enrol_keys"`
	// WarmupKeys: for this many keystrokes after the user authenticated
	// (session start, re-authentication) anomalous windows weigh less,
	// because the owner's first keystrokes of a session are their least
	// typical. 0 disables the warm-up.
	WarmupKeys int `mapstructure:"warmup_keys"`
	// IdleReset: an input gap at least this long (event time) is a
	// walk-away opportunity: what is typed after it is judged on its own
	// and from a lowered trust. 0 disables.
	IdleReset time.Duration `mapstructure:"idle_reset"`
	// MaxSessions bounds the sessions held in memory per input partition;
	// beyond it the least recently active are evicted (bounded memory: an
	// instance holds at most its partitions times this many).
	MaxSessions int `mapstructure:"max_sessions"`
	// MaxPollRecords bounds the input records handled per transaction:
	// smaller transactions commit decisions sooner, larger ones cost less
	// per record. Default 500.
	MaxPollRecords int `mapstructure:"max_poll_records"`
	// LockThreshold: trust below it locks the workstation.
	LockThreshold float64 `mapstructure:"lock_threshold"`
	// StepupThreshold: trust below it (but not below LockThreshold) asks for
	// re-authentication.
	StepupThreshold float64   `mapstructure:"stepup_threshold"`
	Injection       Injection `mapstructure:"injection"`
}

// Window configures the per-session event-time windows.
type Window struct {
	// Size is the event-time length of a window.
	Size time.Duration `mapstructure:"size"`
	// MaxKeys closes a window early once it holds this many keystrokes, so
	// that fast typists get decisions as quickly as the key budget allows.
	MaxKeys int `mapstructure:"max_keys"`
	// Grace is how long after a window's end (in stream time) records are
	// still accepted; later ones go to the late topic.
	Grace time.Duration `mapstructure:"grace"`
}

// Injection configures the profile-free keystroke-injection rules.
type Injection struct {
	// MinKeys is how many consecutive keys the rule looks at.
	MinKeys int `mapstructure:"min_keys"`
	// MaxGap: inter-key gaps at or below it are machine speed.
	MaxGap time.Duration `mapstructure:"max_gap"`
}

// Sink configures the lock-command and incident sink.
type Sink struct {
	Group string `mapstructure:"group"`
	// LockCommandTTL is how long a lock command stays valid; agents ignore
	// older ones (so a replay does not lock today's workstations).
	LockCommandTTL time.Duration `mapstructure:"lock_command_ttl"`
	// LockSigningKey is the master key (hex, ≥ 32 bytes) lock commands are
	// signed with; each device verifies with a key derived from it for that
	// device (`vigil agent device-key`). Prefer VIGIL_SINK_LOCK_SIGNING_KEY.
	// `vigil sink` refuses to start without it: agents refuse unsigned
	// commands.
	LockSigningKey Secret `mapstructure:"lock_signing_key"`
	// LockSigningKeyID names the key in each command, so keys can rotate.
	LockSigningKeyID string `mapstructure:"lock_signing_key_id"`
}

// Simulate configures the synthetic fleet producer.
type Simulate struct {
	Seed    int64 `mapstructure:"seed"`
	Persons int   `mapstructure:"persons"`
	// Rate is the replay speed factor: 1 = real time, 10 = ten times
	// faster, 0 = as fast as possible.
	Rate float64 `mapstructure:"rate"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text, json
}

// HTTP configures the service surface of long-running roles (process,
// sink): /healthz, /readyz and /metrics.
type HTTP struct {
	// Addr is the listen address, e.g. ":9464". Empty disables the server.
	Addr string `mapstructure:"addr"`
}

// Default returns the configuration with every default filled in.
func Default() Config {
	return Config{
		Kafka: Kafka{
			Brokers:               []string{},
			ClientID:              "vigil",
			Topics:                topics.Default(),
			Partitions:            6,
			ReplicationFactor:     1,
			TransactionalIDPrefix: "vigil",
			SessionTimeout:        45 * time.Second,
			RebalanceTimeout:      time.Minute,
			TransactionTimeout:    40 * time.Second,
			SASL:                  SASL{Mechanism: SASLNone},
		},
		Redis: Redis{
			ClusterAddrs: []string{},
			KeyPrefix:    "vigil",
			DialTimeout:  5 * time.Second,
		},
		Tenant: Tenant{ID: "default"},
		Processor: Processor{
			Group: "vigil-processor",
			Window: Window{
				Size:    5 * time.Second,
				MaxKeys: 25,
				Grace:   2 * time.Second,
			},
			ContextKeys:     25,
			EnrolKeys:       1500,
			WarmupKeys:      150,
			IdleReset:       time.Minute,
			MaxSessions:     100000,
			MaxPollRecords:  500,
			LockThreshold:   0.25,
			StepupThreshold: 0.5,
			Injection: Injection{
				MinKeys: 7,
				MaxGap:  30 * time.Millisecond,
			},
		},
		Sink: Sink{
			Group:            "vigil-sink",
			LockCommandTTL:   2 * time.Minute,
			LockSigningKeyID: "1",
		},
		Simulate: Simulate{Seed: 1, Persons: 8, Rate: 0},
		Log:      Log{Level: "info", Format: "text"},
		HTTP:     HTTP{Addr: ":9464"},
	}
}
