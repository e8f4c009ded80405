package bolt

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/callctx/callctx/session"
	bolt "go.etcd.io/bbolt"
)

// History is one append-only log for all calls, keyed by a sequence number,
// and not a region per call: with a region per call, a batch of writes to
// 64 calls dirtied 64 scattered leaf pages and bbolt managed ~20k writes/s
// on this hardware, against ~75k/s when the entries of a batch land on the
// log's last pages. A call's entries form a chain: each log entry holds
// the sequence number of the call's previous entry, and the session record
// holds the newest, so a call's history is read (or purged) by walking the
// chain back from its session.

// A session record is a format byte, the version, the sequence number of
// the call's newest history entry (8 bytes each, big-endian), and the
// session's canonical JSON, which reads serve as they are.
const (
	sessionFormat = 2
	sessionHeader = 17
)

// A log entry is the sequence number of the call's previous entry (0 for
// none), then the HistoryEntry JSON.
const logHeader = 8

// encodeSession makes a session record with a zero head, which putRecords
// patches in with setRecordHead once the entry's sequence number is known;
// s keeps the record's JSON as its encoding (Session.SetEncoded).
func encodeSession(s *session.Session) []byte {
	var head [sessionHeader]byte
	head[0] = sessionFormat
	binary.BigEndian.PutUint64(head[1:9], s.Version)
	b := exactly(head[:], s.AppendJSON)
	s.SetEncoded(b[sessionHeader:])
	return b
}

// scratch holds the buffers records are encoded into before exactly copies
// them out.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// maxScratch bounds the buffers scratch keeps: a rare large session does not
// pin its buffer.
const maxScratch = 64 << 10

// exactly returns prefix with what appendTo appends to it, in a slice of
// exactly that length. The store keeps an active call's records, session and
// call, for the call's whole life: encoded into a buffer that grows as it
// goes, each would hold up to its size again in spare capacity.
func exactly(prefix []byte, appendTo func([]byte) []byte) []byte {
	buf := scratch.Get().(*[]byte)
	b := appendTo(append((*buf)[:0], prefix...))
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= maxScratch {
		*buf = b[:0]
		scratch.Put(buf)
	}
	return out
}

func checkRecord(v []byte) error {
	if len(v) < sessionHeader || v[0] != sessionFormat {
		return errors.New("unknown session record format")
	}
	return nil
}

func recordVersion(v []byte) uint64 { return binary.BigEndian.Uint64(v[1:9]) }

func recordHead(v []byte) uint64 { return binary.BigEndian.Uint64(v[9:17]) }

func setRecordHead(v []byte, head uint64) { binary.BigEndian.PutUint64(v[9:17], head) }

func decodeSession(v []byte) (*session.Session, error) {
	if err := checkRecord(v); err != nil {
		return nil, err
	}
	s := new(session.Session)
	if err := s.UnmarshalJSON(v[sessionHeader:]); err != nil { // copies out of the mmap
		return nil, fmt.Errorf("decode session: %w", err)
	}
	return s, nil
}

// encodeLogEntry makes a log entry that follows prev in its call's chain.
func encodeLogEntry(prev uint64, h *session.HistoryEntry) []byte {
	b := make([]byte, logHeader, 256)
	binary.BigEndian.PutUint64(b, prev)
	return h.AppendJSON(b)
}

// putRecords stores a session record and its new log entry: the entry
// takes the log's next sequence number, which becomes the record's head.
// Both slices are kept until the write is committed.
func putRecords(t *wtx, callID string, rec, logEntry []byte) {
	seq := t.nextSeq()
	t.put(bLog, seqKey(seq), logEntry)
	setRecordHead(rec, seq)
	t.put(bSessions, []byte(callID), rec)
}

// readHistory walks a call's chain back from head, the entry of version
// (one entry per version), and returns the entries with a version above
// after, oldest first, at most limit of them (limit ≤ 0: all). Entries
// newer than the page are passed over without being decoded.
func readHistory(r *reader, head, version, after uint64, limit int) ([]session.HistoryEntry, error) {
	last := version
	if limit > 0 && after+uint64(limit) < version {
		last = after + uint64(limit)
	}
	var entries []session.HistoryEntry
	for seq, v := head, version; seq != 0 && v > after; v-- {
		e := r.get(bLog, seqKey(seq))
		if len(e) < logHeader {
			return nil, fmt.Errorf("history entry %d is missing", seq)
		}
		if v <= last {
			var h session.HistoryEntry
			if err := json.Unmarshal(e[logHeader:], &h); err != nil {
				return nil, fmt.Errorf("decode history entry %d: %w", seq, err)
			}
			if h.Version != v {
				return nil, fmt.Errorf("history entry %d is version %d, not %d", seq, h.Version, v)
			}
			entries = append(entries, h)
		}
		seq = binary.BigEndian.Uint64(e[:logHeader])
	}
	slices.Reverse(entries)
	return entries, nil
}

// deleteHistory deletes a call's chain, walking back from head.
func deleteHistory(tx *bolt.Tx, head uint64) error {
	log := tx.Bucket(bucketNames[bLog])
	for seq := head; seq != 0; {
		k := seqKey(seq)
		v := log.Get(k)
		if len(v) < logHeader {
			return nil // already gone
		}
		seq = binary.BigEndian.Uint64(v[:logHeader])
		if err := log.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }
