package baseline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kyverno-gate/kyverno-gate/cluster"
	"github.com/kyverno-gate/kyverno-gate/render"
)

// The cluster baseline, `cluster` or `cluster:<context>`: what the cluster
// of the kubeconfig's current (or the named) context enforces now, every
// Kyverno object of it as `kyverno-gate export` writes it (no server-owned
// fields, no CRD defaults). The kubeconfig is KUBECONFIG's, else
// ~/.kube/config. A CLI feature: settings refuses it under Argo CD, whose
// sidecar has no cluster access.
//
// The network: the CLI reads the cluster before it reads the repository
// and then closes the network (FetchCluster, called by the process's
// confinement); Resolve then uses that snapshot. Without one (in-process
// tests, which are not confined) Resolve reads the cluster itself.

// IsCluster reports whether spec is a cluster baseline.
func IsCluster(spec string) bool {
	return spec == "cluster" || strings.HasPrefix(spec, "cluster:") && len(spec) > len("cluster:")
}

// ClusterContext is the context a cluster baseline names ("" for the
// kubeconfig's current context).
func ClusterContext(spec string) string {
	return strings.TrimPrefix(strings.TrimPrefix(spec, "cluster"), ":")
}

// ClusterTimeout bounds reading the cluster.
var ClusterTimeout = time.Minute

var (
	fetchedMu sync.Mutex
	fetched   = map[string]*cluster.Snapshot{}
)

// FetchCluster reads the cluster spec names now and keeps the snapshot for
// Resolve.
func FetchCluster(spec string) error {
	snap, err := readCluster(spec)
	if err != nil {
		return err
	}
	fetchedMu.Lock()
	fetched[spec] = snap
	fetchedMu.Unlock()
	return nil
}

func readCluster(spec string) (*cluster.Snapshot, error) {
	client, err := cluster.Connect(cluster.Source{Context: ClusterContext(spec)})
	if err != nil {
		hint := "check the kubeconfig (KUBECONFIG) and the context"
		if errors.Is(err, cluster.ErrNetworkClosed) {
			hint = "the cluster baseline is read before the repository; this is a bug if you see it from the CLI"
		}
		return nil, &Error{Spec: spec, Msg: err.Error(), Hint: hint}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ClusterTimeout)
	defer cancel()
	snap, err := client.Read(ctx, cluster.Options{})
	if err != nil {
		return nil, &Error{Spec: spec, Msg: err.Error(), Hint: "the cluster baseline needs get and list on every Kyverno policy kind and get on their CRDs (examples/cronjobs/rbac.yaml)"}
	}
	return snap, nil
}

// fromCluster is the rendering of the snapshot spec names.
func fromCluster(spec, dir string) (*render.Result, string, error) {
	fetchedMu.Lock()
	snap := fetched[spec]
	fetchedMu.Unlock()
	if snap == nil {
		var err error
		if snap, err = readCluster(spec); err != nil {
			return nil, "", err
		}
	}
	res, err := ClusterRendering(snap)
	if err != nil {
		return nil, "", &Error{Spec: spec, Msg: err.Error()}
	}
	res.Dir = dir
	return res, fmt.Sprintf("cluster %s (%s, %d objects)", snap.Context, snap.Server, len(snap.Objects)), nil
}

// ClusterRendering is a snapshot as a rendering, each object as export
// writes it, in export's order.
func ClusterRendering(snap *cluster.Snapshot) (*render.Result, error) {
	stream, err := cluster.Stream(snap)
	if err != nil {
		return nil, err
	}
	res, err := Parse(stream, "cluster:"+snap.Context)
	if err != nil {
		return nil, err
	}
	res.Notes = append(res.Notes, snap.Notes...)
	return res, nil
}
