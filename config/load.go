package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Load builds the configuration from, in rising precedence: the defaults,
// the YAML file at path (skipped when path is ""), VIGIL_* environment
// variables and the changed flags of flags (nil for none). It then validates
// the result; on a validation error the decoded configuration is returned
// with the error so that callers can still show it.
//
// Flags are matched by name: a flag named "kafka.brokers" sets kafka.brokers.
// Flags whose name is not a configuration key and does not start with a
// configuration section ("config", "verbose", …) are left to the caller;
// dotted ones under a section ("kafka.borkers") are refused. Only flags the
// user actually set count, so a flag's own default never overrides the file
// or the environment.
//
// Relative file paths (the *_file keys) read from the YAML file are resolved
// against the file's directory, so a config file and its certificates can
// move together; from the environment or flags they are relative to the
// working directory.
func Load(path string, flags *pflag.FlagSet) (Config, error) {
	// Every key is registered with viper explicitly (a default and an env
	// binding). Without that, viper's Unmarshal only sees environment
	// variables for keys it already knows from the file, so
	// VIGIL_REDIS_ADDR would be ignored whenever the file does not mention
	// redis.addr. Explicit bindings do what ExperimentalBindStruct does
	// without depending on an experimental option.
	v := viper.New()
	v.AllowEmptyEnv(true) // VIGIL_KAFKA_BROKERS= means "no brokers", not "unset"
	for _, kv := range flatten(Default()) {
		v.SetDefault(kv.key, kv.value)
		if err := v.BindEnv(kv.key, EnvName(kv.key)); err != nil {
			return Config{}, fmt.Errorf("config: binding %s: %w", kv.key, err)
		}
	}

	var errs []error
	if path != "" {
		settings, err := readFile(path)
		if err != nil {
			return Config{}, err
		}
		if err := v.MergeConfigMap(settings); err != nil {
			return Config{}, fmt.Errorf("config: merging %s: %w", path, err)
		}
	}
	errs = append(errs, checkEnv(os.Environ())...)
	if flags != nil {
		errs = append(errs, bindFlags(v, flags)...)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}

	var c Config
	// UnmarshalExact refuses keys that do not map onto a field. The checks
	// above already name unknown keys precisely; this is the backstop.
	if err := v.UnmarshalExact(&c, viper.DecodeHook(decodeHook())); err != nil {
		return Config{}, decodeErrors(err)
	}
	return c, c.Validate()
}

// readFile parses the YAML file, refuses unknown keys and resolves relative
// *_file paths against the file's directory.
func readFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: reading %w", err)
	}
	fv := viper.New()
	fv.SetConfigType("yaml")
	if err := fv.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("config: parsing %s: %w", path, err)
	}
	var errs []error
	for _, k := range fv.AllKeys() {
		if known.leaves[k] {
			continue
		}
		if known.sections[k] {
			val := fv.Get(k)
			if m, ok := val.(map[string]any); val == nil || ok && len(m) == 0 {
				continue // "kafka:" with nothing under it
			}
			errs = append(errs, fmt.Errorf("config: %s: must be a mapping of keys, got %v (in %s)", k, val, path))
			continue
		}
		errs = append(errs, unknownKey(k, "in "+path))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	dir := filepath.Dir(path)
	for _, k := range fv.AllKeys() {
		if !strings.HasSuffix(k, "_file") {
			continue
		}
		if s, ok := fv.Get(k).(string); ok && s != "" && !filepath.IsAbs(s) {
			fv.Set(k, filepath.Join(dir, s))
		}
	}
	return fv.AllSettings(), nil
}

func unknownKey(key, where string) error {
	msg := fmt.Sprintf("config: %s: unknown key (%s)", key, where)
	if s := suggest(key); s != "" {
		msg += fmt.Sprintf("; did you mean %s?", s)
	}
	return errors.New(msg)
}

// topSections are the first segments of all keys (kafka, redis, …).
func topSections() map[string]bool {
	out := map[string]bool{}
	for k := range known.leaves {
		first, _, _ := strings.Cut(k, ".")
		out[first] = true
	}
	return out
}

// checkEnv refuses VIGIL_<SECTION>_* variables that are not a key's
// variable: VIGIL_KAFKA_BORKERS is a typo, not something to ignore. Other
// VIGIL_* variables (VIGIL_TEST_REDIS_ADDR, …) belong to tools and tests and
// are left alone.
func checkEnv(environ []string) []error {
	envKeys := map[string]string{}
	for k := range known.leaves {
		envKeys[EnvName(k)] = k
	}
	var sections []string
	for s := range topSections() {
		sections = append(sections, envPrefix+"_"+strings.ToUpper(s)+"_")
	}
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := envKeys[name]; ok {
			continue
		}
		for _, p := range sections {
			if strings.HasPrefix(name, p) {
				msg := fmt.Sprintf("config: environment variable %s: unknown key", name)
				if s := suggest(strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix+"_"), "_", "."))); s != "" {
					msg += fmt.Sprintf("; did you mean %s?", EnvName(s))
				}
				errs = append(errs, errors.New(msg))
				break
			}
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}

// bindFlags binds the flags the user set whose names are keys.
func bindFlags(v *viper.Viper, flags *pflag.FlagSet) []error {
	sections := topSections()
	var errs []error
	flags.Visit(func(f *pflag.Flag) {
		if known.leaves[f.Name] {
			if err := v.BindPFlag(f.Name, f); err != nil {
				errs = append(errs, fmt.Errorf("config: binding flag --%s: %w", f.Name, err))
			}
			return
		}
		first, _, dotted := strings.Cut(f.Name, ".")
		if dotted && sections[first] {
			errs = append(errs, unknownKey(f.Name, "flag --"+f.Name))
		}
	})
	return errs
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeHook converts strings to durations and comma-separated lists, and
// refuses bare numbers for durations: "size: 5" would otherwise silently
// mean 5ns.
func decodeHook() mapstructure.DecodeHookFunc {
	return mapstructure.ComposeDecodeHookFunc(
		func(from, to reflect.Type, data any) (any, error) {
			if to != durationType || from == durationType {
				return data, nil
			}
			switch from.Kind() {
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
				reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
				reflect.Float32, reflect.Float64:
				if !reflect.ValueOf(data).IsZero() {
					return nil, fmt.Errorf("duration %v needs a unit, e.g. \"%vs\" or \"%vms\"", data, data, data)
				}
			case reflect.String:
				s := reflect.ValueOf(data).String()
				d, err := time.ParseDuration(strings.TrimSpace(s))
				if err != nil {
					// mapstructure's own hook drops the value from the
					// message; durations are not secret, so show it.
					return nil, fmt.Errorf("invalid duration %q, want e.g. \"5s\" or \"30ms\"", s)
				}
				return d, nil
			}
			return data, nil
		},
		func(from, to reflect.Type, data any) (any, error) {
			if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
				return data, nil
			}
			// "a:9092, b:9092" from an env var or flag; an empty string is
			// an empty list, not a list of one empty broker.
			out := []string{}
			for _, s := range strings.Split(reflect.ValueOf(data).String(), ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
			return out, nil
		},
	)
}

// decodeErrors turns mapstructure's multi-line report into one
// "config: key: reason" error per field, like validation errors.
func decodeErrors(err error) error {
	var out []error
	var visit func(error)
	visit = func(e error) {
		var de *mapstructure.DecodeError
		if errors.As(e, &de) {
			reason := de.Unwrap()
			var pe *mapstructure.ParseError
			if errors.As(reason, &pe) {
				reason = fmt.Errorf("cannot parse %q as %s: %w", fmt.Sprint(pe.Value), pe.Expected.Type(), pe.Err)
			}
			out = append(out, fmt.Errorf("config: %s: %w", de.Name(), reason))
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				visit(inner)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			visit(u)
			return
		}
		out = append(out, fmt.Errorf("config: %w", e))
	}
	visit(err)
	return errors.Join(out...)
}
