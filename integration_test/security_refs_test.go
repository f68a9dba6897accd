package integration_test

// TestDocsCiteTestsThatExist reads SECURITY.md and README.md and checks
// every test they cite as proof: the file exists, it declares a function
// of that name (read with go/parser, not matched as text), and the rows
// a citation names ((row "x") or (rows "x", "y")) are string literals in
// that function's body. Files and tests get renamed; a guarantee whose
// proof points nowhere is no longer proved.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// goFile is what the docs may cite of one Go file: its top-level
// functions and, per function, the string literals of its body.
type goFile struct {
	funcs map[string][]string
}

// repoFuncs parses every Go file of the module (but testdata) once.
func repoFuncs(t *testing.T, root string) map[string]*goFile {
	t.Helper()
	files := map[string]*goFile{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		gf := &goFile{funcs: map[string][]string{}}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil {
				continue
			}
			var lits []string
			ast.Inspect(fn, func(n ast.Node) bool {
				if bl, ok := n.(*ast.BasicLit); ok && bl.Kind == token.STRING {
					if s, err := strconv.Unquote(bl.Value); err == nil {
						lits = append(lits, s)
					}
				}
				return true
			})
			gf.funcs[fn.Name.Name] = lits
		}
		files[filepath.ToSlash(rel)] = gf
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

var (
	// `path.go:Name`, optionally followed by (row "a") or (rows "a", "b").
	citeRef = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.go):([A-Za-z_][A-Za-z0-9_]*)`" +
		`(?: \(rows? ((?:"[^"]+"(?:, )?)+)\))?`)
	// `path.go` (`name`): a conformance check in the storetest package.
	checkRef = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.go)` \\(`([A-Za-z_][A-Za-z0-9_]*)`")
	// `TestName` on its own: declared in some test file of the module.
	bareRef = regexp.MustCompile("(?:^|[^:A-Za-z0-9_])`((?:Test|Fuzz)[A-Z][A-Za-z0-9_]*)`")
	// `path_test.go` on its own.
	fileRef = regexp.MustCompile("`([A-Za-z0-9_./-]+_test\\.go)`")
	rowName = regexp.MustCompile(`"([^"]+)"`)
)

func TestDocsCiteTestsThatExist(t *testing.T) {
	files := repoFuncs(t, "..")
	anywhere := map[string]bool{}
	for path, f := range files {
		if strings.HasSuffix(path, "_test.go") {
			for name := range f.funcs {
				anywhere[name] = true
			}
		}
	}
	for _, doc := range []string{"SECURITY.md", "README.md"} {
		text := readExample(t, doc)
		cited := 0
		check := func(path, name string, rows []string) {
			cited++
			f, ok := files[path]
			if !ok {
				t.Errorf("%s cites %s:%s: no such Go file", doc, path, name)
				return
			}
			lits, ok := f.funcs[name]
			if !ok {
				t.Errorf("%s cites %s:%s: the file declares no function of that name", doc, path, name)
				return
			}
			for _, row := range rows {
				found := false
				for _, lit := range lits {
					if strings.Contains(lit, row) {
						found = true
						break
					}
				}
				if !found {
					t.Errorf("%s cites %s:%s (row %q): no string in the function holds it", doc, path, name, row)
				}
			}
		}
		for _, m := range citeRef.FindAllStringSubmatch(text, -1) {
			var rows []string
			for _, r := range rowName.FindAllStringSubmatch(m[3], -1) {
				rows = append(rows, r[1])
			}
			check(m[1], m[2], rows)
		}
		for _, m := range checkRef.FindAllStringSubmatch(text, -1) {
			check(m[1], m[2], nil)
		}
		for _, m := range bareRef.FindAllStringSubmatch(text, -1) {
			cited++
			if !anywhere[m[1]] {
				t.Errorf("%s cites %s: no test file declares it", doc, m[1])
			}
		}
		for _, m := range fileRef.FindAllStringSubmatch(text, -1) {
			if _, err := os.Stat(filepath.Join("..", m[1])); err != nil {
				t.Errorf("%s cites %s: %v", doc, m[1], err)
			}
		}
		if doc == "SECURITY.md" && cited < 100 {
			t.Errorf("SECURITY.md cites %d tests; the pattern no longer reads its citations", cited)
		}
	}
}
