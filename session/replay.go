package session

import (
	"bytes"
	"context"
	"encoding/json"
)

// Type returns the type of the event the entry's write published: Event,
// or for an entry stored before the type was recorded, the type inferred
// from its changes (the first version started the call; call.state set to
// ended ended it; a final sip.transfer.status recorded a transfer's
// outcome; sip.refer.target a REFER the bridge accepted).
func (h *HistoryEntry) Type() EventType {
	switch {
	case h.Event != "":
		return h.Event
	case h.Version == 1:
		return EventCallStarted
	case bytes.Equal(h.Changes["call.state"].New, []byte(`"ended"`)):
		return EventCallEnded
	case finalTransferStatus(h.Changes[VarTransferStatus].New):
		return EventTransferStatus
	case h.Changes[VarReferTarget].New != nil:
		return EventCallReferred
	}
	return EventSessionUpdated
}

func finalTransferStatus(v json.RawMessage) bool {
	var st TransferStatus
	return v != nil && json.Unmarshal(v, &st) == nil && st.Final()
}

// Replay returns the events of the session of callID after version after,
// oldest first and at most limit of them (limit ≤ 0: all), as subscribers
// received them but for Variables, which is nil: a replay carries each
// version's changes, not the whole session at every version. Call is nil
// too. CodeNotFound when there is no such call.
func (s *Service) Replay(ctx context.Context, callID string, after uint64, limit int) ([]Event, error) {
	entries, err := s.store.History(ctx, callID, after, limit)
	if err != nil {
		return nil, err
	}
	events := make([]Event, len(entries))
	for i := range entries {
		h := &entries[i]
		events[i] = Event{Type: h.Type(), CallID: callID, Version: h.Version, At: h.At, Actor: h.Actor, Changes: h.Changes}
	}
	return events, nil
}
