package repofs

import (
	"bytes"
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// maxExpandedNodes bounds how large a YAML file may become once its aliases
// are expanded. Real manifests stay far below; a "billion laughs" file of a
// few hundred bytes exceeds it, and would otherwise take gigabytes when
// kustomize converts it to objects.
const maxExpandedNodes = 1_000_000

// CheckYAML refuses YAML whose aliases expand beyond maxExpandedNodes.
// The document is parsed into nodes, where an alias is a pointer to its
// anchor, so measuring costs no more than the file's own size.
func CheckYAML(data []byte) error {
	if !bytes.ContainsRune(data, '&') || !bytes.ContainsRune(data, '*') {
		return nil // no anchors or no aliases: nothing can expand
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	memo := map[*yaml.Node]int{}
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			return nil // not YAML, or done: the real parser reports syntax errors
		}
		if n := expandedSize(&doc, memo, 0); n > maxExpandedNodes {
			return fmt.Errorf("expands to more than %d YAML nodes through anchors and aliases (a YAML bomb?)", maxExpandedNodes)
		}
	}
}

func expandedSize(n *yaml.Node, memo map[*yaml.Node]int, depth int) int {
	if n == nil || depth > 10_000 {
		return maxExpandedNodes + 1
	}
	if v, ok := memo[n]; ok {
		return v
	}
	size := 1 // the node itself; an alias counts too, then what it expands to
	if n.Kind == yaml.AliasNode {
		size += expandedSize(n.Alias, memo, depth+1)
	} else {
		for _, c := range n.Content {
			size += expandedSize(c, memo, depth+1)
			if size > maxExpandedNodes {
				break
			}
		}
	}
	memo[n] = size
	return size
}
