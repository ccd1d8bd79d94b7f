package processor_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/importer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The public packages are the API: their exported signatures name only the standard library,
// each other, and goka in the one field meant for it.
func TestExportedSignaturesNameNoInternalPackage(t *testing.T) {
	public := []string{
		"github.com/enricher/enricher/processor",
		"github.com/enricher/enricher/codecs",
		"github.com/enricher/enricher/topology",
	}
	pkgs := loadExported(t, public)
	allowed := map[string]bool{}
	for _, p := range public {
		allowed[p] = true
	}
	var bad []string
	for _, pkg := range pkgs {
		for name, paths := range exportedReferences(pkg) {
			for _, path := range paths {
				switch {
				case allowed[path], !strings.Contains(path, "."): // the standard library has no dot
				case name == "processor.Config.Goka" && strings.HasPrefix(path, "github.com/lovoo/goka"):
				default:
					bad = append(bad, name+" names "+path)
				}
			}
		}
	}
	sort.Strings(bad)
	assert.Empty(t, bad, "exported API carries types of other packages")
}

// The check itself finds what it is meant to: an internal type in a signature.
func TestExportedReferencesFindsInternalTypes(t *testing.T) {
	pkgs := loadExported(t, []string{"github.com/enricher/enricher/internal/job"})
	refs := exportedReferences(pkgs[0])
	assert.Contains(t, refs["job.Config.Kafka"], "github.com/enricher/enricher/internal/kafkaconf")
	assert.Contains(t, refs["job.NewEnricher"], "github.com/enricher/enricher/internal/store")
}

// loadExported type-checks paths from the compiler's export data, as `go list -export` builds it.
func loadExported(t *testing.T, paths []string) []*types.Package {
	t.Helper()
	args := append([]string{"list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}"}, paths...)
	out, err := exec.Command("go", args...).Output()
	require.NoError(t, err, "go list -export")
	exports := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if path, file, ok := strings.Cut(sc.Text(), "\t"); ok && file != "" {
			exports[path] = file
		}
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	})
	var pkgs []*types.Package
	for _, p := range paths {
		pkg, err := imp.Import(p)
		require.NoError(t, err)
		pkgs = append(pkgs, pkg)
	}
	return pkgs
}

// exportedReferences maps each exported name of pkg (functions, variables, constants, struct
// fields, methods) to the import paths of the named types its signature mentions.
func exportedReferences(pkg *types.Package) map[string][]string {
	refs := map[string][]string{}
	add := func(name string, typ types.Type) {
		seen := map[types.Type]bool{}
		var walk func(types.Type)
		walk = func(typ types.Type) {
			if seen[typ] {
				return
			}
			seen[typ] = true
			switch t := typ.(type) {
			case *types.Named:
				if obj := t.Obj(); obj.Pkg() != nil && obj.Pkg() != pkg {
					refs[name] = append(refs[name], obj.Pkg().Path())
				}
				for i := 0; i < t.TypeArgs().Len(); i++ {
					walk(t.TypeArgs().At(i))
				}
			case *types.Alias:
				walk(types.Unalias(t))
			case *types.Pointer:
				walk(t.Elem())
			case *types.Slice:
				walk(t.Elem())
			case *types.Array:
				walk(t.Elem())
			case *types.Map:
				walk(t.Key())
				walk(t.Elem())
			case *types.Chan:
				walk(t.Elem())
			case *types.Signature:
				for i := 0; i < t.Params().Len(); i++ {
					walk(t.Params().At(i).Type())
				}
				for i := 0; i < t.Results().Len(); i++ {
					walk(t.Results().At(i).Type())
				}
			case *types.Struct:
				for i := 0; i < t.NumFields(); i++ {
					if f := t.Field(i); f.Exported() || f.Embedded() {
						walk(f.Type())
					}
				}
			case *types.Interface:
				for i := 0; i < t.NumMethods(); i++ {
					walk(t.Method(i).Type())
				}
			}
		}
		walk(typ)
	}
	scope := pkg.Scope()
	for _, n := range scope.Names() {
		obj := scope.Lookup(n)
		if !obj.Exported() {
			continue
		}
		name := pkg.Name() + "." + n
		tn, isType := obj.(*types.TypeName)
		if !isType {
			add(name, obj.Type())
			continue
		}
		named, ok := tn.Type().(*types.Named)
		if !ok {
			add(name, tn.Type())
			continue
		}
		if st, ok := named.Underlying().(*types.Struct); ok {
			for i := 0; i < st.NumFields(); i++ {
				if f := st.Field(i); f.Exported() || f.Embedded() {
					add(name+"."+f.Name(), f.Type())
				}
			}
		} else {
			add(name, named.Underlying())
		}
		for i := 0; i < named.NumMethods(); i++ {
			if m := named.Method(i); m.Exported() {
				add(name+"."+m.Name(), m.Type())
			}
		}
	}
	return refs
}
