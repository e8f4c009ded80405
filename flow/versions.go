package flow

import (
	"slices"
	"time"
)

// SnapshotOf returns the snapshot of a version the engine has loaded since
// it started: the one in force or one that calls started with before a
// reload.
func (e *Engine) SnapshotOf(version string) (*Snapshot, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.versions[version]
	return s, ok
}

// FlowVersion is one version of a flow the engine holds.
type FlowVersion struct {
	Version  string    `json:"version"` // the snapshot's
	LoadedAt time.Time `json:"loadedAt"`
	Current  bool      `json:"current"` // the snapshot in force
	// Digest identifies the flow's definition: versions with the same
	// digest hold the same flow (the reload changed something else).
	Digest string `json:"digest"`
}

// FlowVersions lists the versions of the flow called name that the engine
// holds, newest first.
func (e *Engine) FlowVersions(name string) []FlowVersion {
	current := e.Snapshot()
	e.mu.Lock()
	snaps := make([]*Snapshot, 0, len(e.versions))
	for _, s := range e.versions {
		snaps = append(snaps, s)
	}
	e.mu.Unlock()
	slices.SortFunc(snaps, func(a, b *Snapshot) int { return b.LoadedAt.Compare(a.LoadedAt) })
	out := []FlowVersion{}
	for _, s := range snaps {
		if f, ok := s.Flow(name); ok {
			out = append(out, FlowVersion{Version: s.Version, LoadedAt: s.LoadedAt, Current: s == current, Digest: f.Digest()})
		}
	}
	return out
}
