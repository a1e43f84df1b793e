package main

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/mod/modfile"
)

// importEdge is one import made by a package of the main module, from a
// non-test or a test file.
type importEdge struct {
	Importer string // the importing package of the main module
	Path     string // the imported package
	Module   string // the module providing Path, "" when none in the build list does
}

// problemKind says how a requirement disagrees with the imports.
type problemKind int

const (
	markedIndirect problemKind = iota // imported directly, but marked // indirect
	markedDirect                      // marked direct, but imported by no package of the module
	notRequired                       // imported directly, but absent from go.mod
)

// problem is one disagreement between go.mod and the imports.
type problem struct {
	Kind problemKind
	// Module is the module's path; for an import that no module of the
	// build list provides and no requirement prefixes, the package path.
	Module    string
	Importers []string // sorted packages of the main module importing it; none for markedDirect
}

func (p problem) String() string {
	switch p.Kind {
	case markedIndirect:
		return fmt.Sprintf("%s is marked // indirect but imported directly by %s: drop the // indirect comment",
			p.Module, importerList(p.Importers))
	case markedDirect:
		return fmt.Sprintf("%s is required as direct but no package of the module imports it: mark it // indirect or drop it (go mod tidy)",
			p.Module)
	default:
		return fmt.Sprintf("%s is imported by %s but not required in go.mod: go get it",
			p.Module, importerList(p.Importers))
	}
}

// importerList names at most three importers, so one widely used module
// does not flood the report.
func importerList(importers []string) string {
	const shown = 3
	if len(importers) <= shown {
		return strings.Join(importers, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(importers[:shown], ", "), len(importers)-shown)
}

// check compares the requirements of gomod (a go.mod file's contents) with
// the imports made by the main module's packages; edges to the standard
// library must already be left out. Problems come sorted by kind, then
// module.
func check(gomod []byte, edges []importEdge) ([]problem, error) {
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return nil, err
	}
	if f.Module == nil {
		return nil, fmt.Errorf("go.mod has no module line")
	}
	self := f.Module.Mod.Path
	indirect := make(map[string]bool, len(f.Require)) // required module → marked // indirect
	for _, r := range f.Require {
		indirect[r.Mod.Path] = r.Indirect
	}

	imported := map[string]map[string]bool{} // module → importers
	for _, e := range edges {
		if e.Module == self || within(e.Path, self) {
			continue
		}
		mod := e.Module
		if mod == "" {
			// Not provided by the build list (a package missing from its
			// module's version, say): still the module its path names.
			mod = longestPrefix(e.Path, indirect)
		}
		if mod == "" {
			mod = e.Path
		}
		if imported[mod] == nil {
			imported[mod] = map[string]bool{}
		}
		imported[mod][e.Importer] = true
	}

	var problems []problem
	for mod, importers := range imported {
		ind, required := indirect[mod]
		switch {
		case !required:
			problems = append(problems, problem{Kind: notRequired, Module: mod, Importers: sortedKeys(importers)})
		case ind:
			problems = append(problems, problem{Kind: markedIndirect, Module: mod, Importers: sortedKeys(importers)})
		}
	}
	for mod, ind := range indirect {
		if !ind && imported[mod] == nil {
			problems = append(problems, problem{Kind: markedDirect, Module: mod})
		}
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Kind != problems[j].Kind {
			return problems[i].Kind < problems[j].Kind
		}
		return problems[i].Module < problems[j].Module
	})
	return problems, nil
}

// within reports whether package path pkg lies in module mod.
func within(pkg, mod string) bool {
	return pkg == mod || strings.HasPrefix(pkg, mod+"/")
}

// longestPrefix returns the longest module of mods that pkg lies in, or "".
func longestPrefix(pkg string, mods map[string]bool) string {
	best := ""
	for mod := range mods {
		if within(pkg, mod) && len(mod) > len(best) {
			best = mod
		}
	}
	return best
}

func sortedKeys(set map[string]bool) []string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
