package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"sync"

	"github.com/linkedin/goavro/v2"
)

// Full Avro names of Vigil's records. They are stable across schema
// versions; with a registry they are also the default subject names.
const (
	RecordInputBatch  = "io.vigil.InputBatch"
	RecordDecision    = "io.vigil.Decision"
	RecordLockCommand = "io.vigil.LockCommand"
	RecordIncident    = "io.vigil.Incident"
	RecordFeedback    = "io.vigil.Feedback"
)

//go:embed *.avsc
var schemaFiles embed.FS

// record identifies one of Vigil's record types.
type record uint8

const (
	recInputBatch record = iota
	recDecision
	recLockCommand
	recIncident
	recFeedback
	numRecords
)

var recordNames = [numRecords]string{RecordInputBatch, RecordDecision, RecordLockCommand, RecordIncident, RecordFeedback}

// fileBases maps schema file name stems to records.
var fileBases = map[string]record{
	"input_batch":  recInputBatch,
	"decision":     recDecision,
	"lock_command": recLockCommand,
	"incident":     recIncident,
	"feedback":     recFeedback,
}

func (r record) String() string { return recordNames[r] }

// writer is one writer schema: an embedded version, or a schema fetched from
// the registry that is not embedded (a newer producer's).
type writer struct {
	rec     record
	version int    // embedded file version; 0 if only known from a registry
	file    string // embedded file name
	text    string // schema JSON as written
	fp      uint64 // CRC-64-AVRO of the Parsing Canonical Form
	codec   *goavro.Codec
	tree    *node
	// batch is set when the writer has an input batch layout the
	// hand-written decoder understands.
	batch *batchLayout
}

// SchemaVersion describes one embedded schema version.
type SchemaVersion struct {
	Record      string // full Avro name, e.g. io.vigil.InputBatch
	Version     int    // from the file name, 1-based
	File        string // e.g. input_batch.v2.avsc
	Fingerprint uint64 // CRC-64-AVRO (Rabin) of the Parsing Canonical Form
	Schema      string // the schema JSON
}

type embedded struct {
	all    []*writer // ordered by record, then version
	byFP   map[uint64]*writer
	latest [numRecords]*writer
}

var fileRE = regexp.MustCompile(`^([a-z_]+)\.v([1-9][0-9]*)\.avsc$`)

// loadEmbedded parses every embedded schema once. It is an error, caught by
// the tests and by NewCodec, for a file to be misnamed, to name the wrong
// record, to skip a version number, or to share a fingerprint with another
// version (a change that only touched docs or defaults is not a new
// version).
var loadEmbedded = sync.OnceValues(func() (*embedded, error) {
	e := &embedded{byFP: map[uint64]*writer{}}
	names, err := fs.Glob(schemaFiles, "*.avsc")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		m := fileRE.FindStringSubmatch(name)
		if m == nil {
			return nil, fmt.Errorf("schemas: %s: file name is not <record>.v<N>.avsc", name)
		}
		rec, ok := fileBases[m[1]]
		if !ok {
			return nil, fmt.Errorf("schemas: %s: unknown record %q", name, m[1])
		}
		ver, _ := strconv.Atoi(m[2])
		text, err := schemaFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		w, err := newWriter(string(text))
		if err != nil {
			return nil, fmt.Errorf("schemas: %s: %w", name, err)
		}
		if w.rec != rec {
			return nil, fmt.Errorf("schemas: %s: declares %s, file name says %s", name, w.tree.name, rec)
		}
		w.version, w.file = ver, name
		if other := e.byFP[w.fp]; other != nil {
			return nil, fmt.Errorf("schemas: %s and %s have the same canonical form", name, other.file)
		}
		e.byFP[w.fp] = w
		e.all = append(e.all, w)
	}
	sort.Slice(e.all, func(i, j int) bool {
		a, b := e.all[i], e.all[j]
		if a.rec != b.rec {
			return a.rec < b.rec
		}
		return a.version < b.version
	})
	for _, w := range e.all {
		want := 1
		if prev := e.latest[w.rec]; prev != nil {
			want = prev.version + 1
		}
		if w.version != want {
			return nil, fmt.Errorf("schemas: %s: expected version %d of %s", w.file, want, w.rec)
		}
		e.latest[w.rec] = w
	}
	for r, w := range e.latest {
		if w == nil {
			return nil, fmt.Errorf("schemas: no schema for %s", record(r))
		}
	}
	return e, nil
})

// newWriter compiles a writer schema and works out which record it is for.
func newWriter(text string) (*writer, error) {
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, err
	}
	tree, err := parseSchema(text)
	if err != nil {
		return nil, err
	}
	if tree.kind != kRecord {
		return nil, fmt.Errorf("top-level type is not a record")
	}
	w := &writer{text: text, fp: codec.Rabin, codec: codec, tree: tree, rec: numRecords}
	for r, name := range recordNames {
		if tree.name == name {
			w.rec = record(r)
		}
	}
	if w.rec == numRecords {
		return nil, fmt.Errorf("record %s is not one of Vigil's", tree.name)
	}
	if w.rec == recInputBatch {
		w.batch = batchLayoutOf(tree)
	}
	return w, nil
}

// Versions lists every embedded schema version, ordered by record and
// version. Tools use it to pre-register schemas or to check compatibility.
func Versions() []SchemaVersion {
	e, err := loadEmbedded()
	if err != nil {
		return nil
	}
	out := make([]SchemaVersion, 0, len(e.all))
	for _, w := range e.all {
		out = append(out, SchemaVersion{Record: w.rec.String(), Version: w.version, File: w.file, Fingerprint: w.fp, Schema: w.text})
	}
	return out
}
