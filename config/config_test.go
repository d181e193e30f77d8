package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// cleanEnv removes VIGIL_<section>_* variables of the surrounding
// environment for the duration of the test, so that a developer's shell
// does not change results.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for s := range topSections() {
			if strings.HasPrefix(name, envPrefix+"_"+strings.ToUpper(s)+"_") {
				t.Setenv(name, "") // restores the old value afterwards
				os.Unsetenv(name)
			}
		}
	}
}

func TestDefaultValidates(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadNoFileIsDefault(t *testing.T) {
	cleanEnv(t)
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("Load(\"\") != Default():\n%v\nvs\n%v", c, Default())
	}
}

func TestGoodFiles(t *testing.T) {
	cleanEnv(t)
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestProductionFile(t *testing.T) {
	cleanEnv(t)
	c, err := Load("testdata/production.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Kafka.Brokers; len(got) != 3 || got[2] != "[::1]:9093" {
		t.Errorf("brokers %v", got)
	}
	if c.Kafka.TLS.CAFile != filepath.Join("testdata", "ca.pem") {
		t.Errorf("relative ca_file not resolved against the file's directory: %q", c.Kafka.TLS.CAFile)
	}
	if c.Processor.Window.Size != 3*time.Second || c.Processor.Window.Grace != 0 {
		t.Errorf("window %+v", c.Processor.Window)
	}
	// Unset keys keep their defaults.
	if c.Processor.Window.MaxKeys != Default().Processor.Window.MaxKeys || c.Sink.LockCommandTTL != 2*time.Minute {
		t.Errorf("defaults lost: %+v %+v", c.Processor.Window, c.Sink)
	}
	if c.Tenant.KeySecret.Reveal() != "0123456789abcdef0123" {
		t.Errorf("secret %q", c.Tenant.KeySecret.Reveal())
	}
}

func TestBadFiles(t *testing.T) {
	cleanEnv(t)
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) == 0 {
		t.Fatal("no bad files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantKey(t, f)
			_, err := Load(f, nil)
			if err == nil {
				t.Fatalf("loaded without error; want an error about %s", want)
			}
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error does not mention %q:\n%v", want, err)
			}
			t.Log(err)
		})
	}
}

func wantKey(t *testing.T, path string) string {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	sc.Scan()
	want, ok := strings.CutPrefix(sc.Text(), "# want: ")
	if !ok || want == "" {
		t.Fatalf("%s: first line must be '# want: <key>'", path)
	}
	return strings.TrimSpace(want)
}

func TestErrorFormat(t *testing.T) {
	cleanEnv(t)
	_, err := Load("testdata/window-size.bad.yaml", nil)
	if want := "config: processor.window.size: must be > 0, got -5s"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestValidateReportsAll(t *testing.T) {
	c := Default()
	c.Processor.Window.Size = 0
	c.Log.Level = "loud"
	c.Redis.DialTimeout = -time.Second
	err := c.Validate()
	for _, k := range []string{"processor.window.size", "log.level", "redis.dial_timeout"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("missing %s in %v", k, err)
		}
	}
}

func TestEnvOverrides(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_KAFKA_BROKERS", "k1:9092, k2:9092")
	t.Setenv("VIGIL_REDIS_ADDR", "127.0.0.1:6380")
	t.Setenv("VIGIL_PROCESSOR_WINDOW_SIZE", "7s")
	t.Setenv("VIGIL_PROCESSOR_INJECTION_MAX_GAP", "20ms")
	t.Setenv("VIGIL_KAFKA_TOPICS_LOCK_COMMANDS", "x.locks")
	t.Setenv("VIGIL_TENANT_KEY_SECRET", "abcdefghijklmnopq")
	t.Setenv("VIGIL_PROCESSOR_LOCK_THRESHOLD", "0.3")
	t.Setenv("VIGIL_KAFKA_TLS_INSECURE_SKIP_VERIFY", "true")
	t.Setenv("VIGIL_TEST_REDIS_ADDR", "elsewhere:1") // not a config section: ignored
	// The file sets brokers and window size too; env wins.
	c, err := Load("testdata/production.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) {
		t.Errorf("brokers %q", c.Kafka.Brokers)
	}
	if c.Redis.Addr != "127.0.0.1:6380" {
		t.Errorf("redis.addr %q", c.Redis.Addr)
	}
	if c.Processor.Window.Size != 7*time.Second || c.Processor.Injection.MaxGap != 20*time.Millisecond {
		t.Errorf("durations %v %v", c.Processor.Window.Size, c.Processor.Injection.MaxGap)
	}
	if c.Kafka.Topics.LockCommands != "x.locks" || c.Tenant.KeySecret.Reveal() != "abcdefghijklmnopq" {
		t.Errorf("topics/secret %+v", c.Kafka.Topics)
	}
	if c.Processor.LockThreshold != 0.3 || !c.Kafka.TLS.InsecureSkipVerify {
		t.Errorf("threshold/bool %v %v", c.Processor.LockThreshold, c.Kafka.TLS.InsecureSkipVerify)
	}
	// Relative paths keep being resolved against the file for file values.
	if c.Redis.TLS.CAFile != filepath.Join("testdata", "ca.pem") {
		t.Errorf("redis ca %q", c.Redis.TLS.CAFile)
	}
}

func TestEnvWithoutFile(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_REDIS_ADDR", "localhost:6379")
	t.Setenv("VIGIL_KAFKA_BROKERS", "localhost:9092")
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Addr != "localhost:6379" || len(c.Kafka.Brokers) != 1 {
		t.Fatalf("env ignored without a file: %+v %+v", c.Redis, c.Kafka.Brokers)
	}
}

// A Redis Cluster from the file: seeds kept in order, the shared
// connection settings apply, relative paths resolved as for a single Redis.
func TestRedisClusterFile(t *testing.T) {
	cleanEnv(t)
	c, err := Load("testdata/redis-cluster.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Redis
	if want := []string{"redis-0.redis:6379", "redis-1.redis:6379", "[::1]:7001"}; !reflect.DeepEqual(r.ClusterAddrs, want) {
		t.Errorf("cluster_addrs %q, want %q", r.ClusterAddrs, want)
	}
	if r.Addr != "" || !r.External() || r.Username != "vigil" || r.Password.Reveal() != "hunter2" || r.DialTimeout != 2*time.Second {
		t.Errorf("redis %+v", r)
	}
	if r.TLS.CAFile != filepath.Join("testdata", "ca.pem") {
		t.Errorf("ca_file %q", r.TLS.CAFile)
	}
	if Default().Redis.External() {
		t.Error("the default Redis counts as external")
	}
}

// VIGIL_REDIS_CLUSTER_ADDRS is comma separated like every list, and an
// empty VIGIL_REDIS_ADDR clears the file's single Redis so that the
// environment can switch a deployment to a cluster.
func TestEnvRedisCluster(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_REDIS_CLUSTER_ADDRS", "r0:6379, r1:6379,r2:6379")
	t.Setenv("VIGIL_REDIS_DB", "0")
	t.Setenv("VIGIL_REDIS_ADDR", "")
	c, err := Load("testdata/production.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Redis.ClusterAddrs, []string{"r0:6379", "r1:6379", "r2:6379"}) || c.Redis.Addr != "" {
		t.Fatalf("redis %q %q", c.Redis.Addr, c.Redis.ClusterAddrs)
	}
	// Without clearing redis.addr both are set: refused with the key.
	os.Unsetenv("VIGIL_REDIS_ADDR")
	_, err = Load("testdata/production.good.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "config: redis.cluster_addrs: mutually exclusive with redis.addr") {
		t.Fatalf("got %v", err)
	}
}

func TestEnvEmptyClears(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_KAFKA_BROKERS", "")
	c, err := Load("testdata/production.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Kafka.Brokers) != 0 {
		t.Fatalf("brokers %q, want none (embedded)", c.Kafka.Brokers)
	}
}

func TestEnvBadValue(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_PROCESSOR_WINDOW_SIZE", "-5s")
	_, err := Load("", nil)
	if err == nil || err.Error() != "config: processor.window.size: must be > 0, got -5s" {
		t.Fatalf("got %v", err)
	}
	t.Setenv("VIGIL_PROCESSOR_WINDOW_SIZE", "soon")
	if _, err = Load("", nil); err == nil || !strings.Contains(err.Error(), "processor.window.size") {
		t.Fatalf("got %v", err)
	}
}

func TestEnvTypo(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_KAFKA_BORKERS", "localhost:9092")
	_, err := Load("", nil)
	if err == nil || !strings.Contains(err.Error(), "VIGIL_KAFKA_BORKERS") || !strings.Contains(err.Error(), "VIGIL_KAFKA_BROKERS") {
		t.Fatalf("got %v", err)
	}
}

func TestFileTypo(t *testing.T) {
	cleanEnv(t)
	_, err := Load("testdata/typo.bad.yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "kafka.borkers: unknown key") || !strings.Contains(err.Error(), "did you mean kafka.brokers") {
		t.Fatalf("got %v", err)
	}
}

func TestFlags(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VIGIL_PROCESSOR_WINDOW_SIZE", "7s")
	fs := pflag.NewFlagSet("vigil", pflag.ContinueOnError)
	fs.StringSlice("kafka.brokers", nil, "")
	fs.Duration("processor.window.size", 0, "")
	fs.String("log.level", "debug", "") // default differs, but unset: must not apply
	fs.String("config", "", "")         // not a key: left to the caller
	fs.Int("processor.max_sessions", 0, "")
	if err := fs.Parse([]string{"--kafka.brokers=a:1,b:2", "--processor.window.size=9s", "--config=x.yaml", "--processor.max_sessions=7"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load("", fs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Kafka.Brokers, []string{"a:1", "b:2"}) {
		t.Errorf("brokers %q", c.Kafka.Brokers)
	}
	if c.Processor.Window.Size != 9*time.Second {
		t.Errorf("flag must beat env: %v", c.Processor.Window.Size)
	}
	if c.Log.Level != "info" {
		t.Errorf("unset flag default applied: %q", c.Log.Level)
	}
	if c.Processor.MaxSessions != 7 {
		t.Errorf("max_sessions %d", c.Processor.MaxSessions)
	}
}

func TestFlagTypo(t *testing.T) {
	cleanEnv(t)
	fs := pflag.NewFlagSet("vigil", pflag.ContinueOnError)
	fs.String("kafka.client-id", "", "")
	_ = fs.Parse([]string{"--kafka.client-id=x"})
	_, err := Load("", fs)
	if err == nil || !strings.Contains(err.Error(), "kafka.client-id") || !strings.Contains(err.Error(), "kafka.client_id") {
		t.Fatalf("got %v", err)
	}
}

func TestEnvNamesUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		e := EnvName(k)
		if other, ok := seen[e]; ok {
			t.Errorf("%s and %s share %s", k, other, e)
		}
		seen[e] = k
	}
	if EnvName("kafka.brokers") != "VIGIL_KAFKA_BROKERS" || EnvName("processor.window.size") != "VIGIL_PROCESSOR_WINDOW_SIZE" {
		t.Fatal("env naming changed")
	}
}

// The example must document every key, and with its default value.
func TestExampleIsDefault(t *testing.T) {
	cleanEnv(t)
	c, err := Load("example.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example.yaml differs from Default():\n%v\nvs\n%v", c, Default())
	}
	v := viper.New()
	v.SetConfigFile("example.yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	for _, k := range Keys() {
		if !v.InConfig(k) {
			t.Errorf("example.yaml does not document %s", k)
		}
	}
}

func TestSecretsRedacted(t *testing.T) {
	c := Default()
	c.Tenant.KeySecret = "tenant-secret-value-123"
	c.Redis.Password = "redis-password-value"
	c.Kafka.SASL.Password = "kafka-password-value"
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "config", c, "tenant", c.Tenant)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "config", c, "redis", c.Redis)
	buf.WriteString(c.String())
	fmt.Fprintf(&buf, "%v %+v %#v %s", c, c.Tenant, c.Redis, c.Kafka.SASL.Password)
	j, _ := json.Marshal(c)
	buf.Write(j)
	for _, s := range []string{"tenant-secret-value-123", "redis-password-value", "kafka-password-value"} {
		if strings.Contains(buf.String(), s) {
			t.Fatalf("secret %q leaked:\n%s", s, buf.String())
		}
	}
	if !strings.Contains(buf.String(), "[redacted]") {
		t.Fatal("no redaction marker")
	}
	if !strings.Contains(c.String(), "processor.window.size=5s") {
		t.Fatalf("String():\n%s", c.String())
	}
}

func TestTLSClientConfig(t *testing.T) {
	if tc, err := (TLS{}).ClientConfig(); tc != nil || err != nil {
		t.Fatalf("disabled: %v %v", tc, err)
	}
	if _, err := (TLS{Enabled: true, CAFile: "testdata/ca.pem"}).ClientConfig(); err == nil {
		t.Fatal("dummy CA accepted")
	}
	tc, err := (TLS{Enabled: true, InsecureSkipVerify: true}).ClientConfig()
	if err != nil || !tc.InsecureSkipVerify {
		t.Fatal(tc, err)
	}
}

func FuzzLoad(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	files = append(files, "example.yaml")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err == nil {
			f.Add(b)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.yaml")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(p, nil)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load succeeded but Validate fails: %v", err)
		}
	})
}
