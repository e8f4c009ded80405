// Package bolt implements session.Store on bbolt, the embedded default:
// one file, no server, crash-safe. Writes are made durable in a
// write-ahead log, a group of concurrent writes per fdatasync, and bbolt
// catches up behind it (writer.go, wal.go, applier.go).
package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/callctx/callctx/session"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

var _ session.Store = (*Store)(nil)

// bucketNames names the buckets, by bucketID.
var bucketNames = [numBuckets][]byte{
	bCalls:    []byte("calls"),    // call ID → Call JSON
	bSessions: []byte("sessions"), // call ID → session record (see encodeSession)
	bLog:      []byte("log"),      // sequence number (8 bytes BE) → history log entry (see history.go)
	bByStart:  []byte("by_start"), // start time (8 bytes BE ns), call ID → state byte
	bActive:   []byte("active"),   // start time, call ID → empty; active calls only
	bByEnd:    []byte("by_end"),   // end time (8 bytes BE ns), call ID → empty

	bFlowRuns:    []byte("flow_runs"),    // call ID → flow state (package flow's JSON)
	bOutbox:      []byte("outbox"),       // entry ID → OutboxEntry JSON
	bOutboxDue:   []byte("outbox_due"),   // due time (8 bytes BE ns), entry ID → empty; pending entries only
	bOutboxCall:  []byte("outbox_call"),  // call ID, 0x00, entry ID → empty
	bOutboxFired: []byte("outbox_fired"), // call ID, 0x00, automation → entries its events fired (4 bytes BE)
}

// bucketMeta holds where bbolt is applied up to in the write-ahead log.
var bucketMeta = []byte("meta")

// Options tune the store. Zero values take defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process's lock on the
	// file before it reports the data directory as in use.
	LockTimeout time.Duration
	// OnCommit, when set, hears of every durable group commit: how many
	// store writes it held (more than one when concurrent writes shared
	// it) and how long making it durable took (the write-ahead log's
	// append and fdatasync). It is called by the writing goroutine before
	// the writers are told: keep it fast.
	OnCommit func(writes int, commit time.Duration)
	// OnWrite, when set, hears how long each write took in the store, from
	// joining the writer's queue to being durable (or failing): the wait
	// for the commit in progress, its own group's commit, and its turn to
	// be told. Called by the writing client's goroutine.
	OnWrite func(took time.Duration)
}

// DefaultLockTimeout is Options.LockTimeout's default.
const DefaultLockTimeout = time.Second

// FileName is the name of the database file inside the data directory;
// the write-ahead log is beside it.
const FileName = "callctx.db"

// Store is the bbolt session.Store.
type Store struct {
	db      *bolt.DB
	wal     *wal
	ov      *overlay
	applier *applier
	writer  *writer
	cache   *readCache

	closeOnce sync.Once
	closeErr  error
	// replayedEnd is where the log ended when the store opened (tests).
	replayedEnd int64
}

// ErrInUse is returned by Open when another process holds the database.
var ErrInUse = errors.New("the data directory is already in use by another callctx process")

// errClosed is what a write gets once the store is closing.
var errClosed = errors.New("the store is closed")

// Open opens (creating if needed) the store in directory dir, replaying
// the writes the write-ahead log holds beyond bbolt's state.
func Open(dir string, opts Options) (*Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.LockTimeout,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true, // the freelist is rebuilt on open; commits stay crash-safe
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open bolt db %s: %w", path, err)
	}
	log, err := openWAL(filepath.Join(dir, walFileName))
	if err != nil {
		db.Close()
		return nil, err
	}
	st := &Store{db: db, wal: log, ov: newOverlay(), cache: newReadCache()}
	seq, err := st.recover()
	if err == nil {
		err = st.warmCache()
	}
	if err != nil {
		log.close()
		db.Close()
		return nil, err
	}
	st.applier = newApplier(db, st.ov, log.epoch, log.gen)
	st.writer = newWriter(st, log, seq, opts.OnCommit, opts.OnWrite)
	return st, nil
}

// recover creates the buckets, applies the log records bbolt lacks (the
// writes acknowledged before a crash), starts a new epoch of the log, and
// returns the history log's last sequence number.
func (s *Store) recover() (seq uint64, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range append(bucketNames[:], bucketMeta) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		epoch, off, gen, err := readMeta(tx)
		if err != nil {
			return err
		}
		records, err := s.wal.replay(epoch, off, gen)
		if err != nil {
			return err
		}
		s.replayedEnd = off
		groups := make([]pendingGroup, 0, len(records))
		for _, r := range records {
			changes, err := decodeChanges(r.payload)
			if err != nil {
				return fmt.Errorf("write-ahead log record %d: %w", r.gen, err)
			}
			groups = append(groups, pendingGroup{changes: changes})
			gen, s.replayedEnd = r.gen, r.end
		}
		if err := applyGroups(tx, groups); err != nil {
			return err
		}
		log := tx.Bucket(bucketNames[bLog])
		seq = log.Sequence()
		if k, _ := log.Cursor().Last(); len(k) == 8 {
			seq = max(seq, binary.BigEndian.Uint64(k))
		}
		s.wal.restart(epoch+1, gen)
		return putMeta(tx, epoch+1, 0, gen)
	})
	if err != nil {
		return 0, fmt.Errorf("recover bolt db: %w", err)
	}
	return seq, nil
}

// warmCache loads the active calls' sessions into the read cache.
func (s *Store) warmCache() error {
	return s.db.View(func(tx *bolt.Tx) error {
		sessions := tx.Bucket(bucketNames[bSessions])
		return tx.Bucket(bucketNames[bActive]).ForEach(func(k, _ []byte) error {
			rec := sessions.Get(k[8:])
			if checkRecord(rec) != nil {
				return nil // reads report it
			}
			sess, err := decodeSession(rec)
			if err != nil {
				return nil
			}
			callRec := bytes.Clone(tx.Bucket(bucketNames[bCalls]).Get(k[8:]))
			call := new(session.Call)
			if json.Unmarshal(callRec, call) != nil {
				callRec, call = nil, nil // EndCall reads it from bbolt, and reports it
			}
			s.cache.put(string(k[8:]), bytes.Clone(rec), sess, callRec, call)
			return nil
		})
	})
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Close closes the store after the writes in flight are committed and
// bbolt holds them all.
// Closing again does nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.writer.close()
		s.applier.close()
		if err := errors.Join(s.applier.Err(), s.wal.close(), s.db.Close()); err != nil {
			s.closeErr = fmt.Errorf("close bolt db: %w", err)
		}
	})
	return s.closeErr
}

// Ping implements session.Store: a read transaction that opens is an
// answer, unless bbolt refuses what the log hands it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.applier.Err(); err != nil {
		return storeErr("ping", err)
	}
	return storeErr("ping", s.db.View(func(*bolt.Tx) error { return nil }))
}

// Check runs bbolt's consistency check over the whole file, once bbolt
// holds every write.
func (s *Store) Check() error {
	return s.readApplied(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// write runs fn in the next group commit (see writer.write): fn reports
// domain errors through its closure and returns only storage errors.
func (s *Store) write(fn func(t *wtx) error) error { return s.writer.write(fn) }

func storeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errClosed) {
		return &session.Error{Code: session.CodeUnavailable, Message: "the session store is closed", Err: err}
	}
	var se *session.Error
	if errors.As(err, &se) {
		return err
	}
	return session.StorageError(op, err)
}

func notFound(id string) error {
	return session.Errorf(session.CodeNotFound, "there is no call %s", id)
}

// Call implements session.Store.
func (s *Store) Call(ctx context.Context, id string) (*session.Call, error) {
	var c *session.Call
	err := s.read(func(r *reader) error {
		v := r.get(bCalls, []byte(id))
		if v == nil {
			return notFound(id)
		}
		c = new(session.Call)
		return json.Unmarshal(v, c)
	})
	return c, storeErr("read call", err)
}

// ListCalls implements session.Store.
func (s *Store) ListCalls(ctx context.Context, opts session.ListOptions) (*session.CallPage, error) {
	var after []byte
	if opts.Cursor != "" {
		k, err := base64.RawURLEncoding.DecodeString(opts.Cursor)
		if err != nil || len(k) <= 8 {
			return nil, &session.Error{Code: session.CodeInvalid, Message: "the cursor is not valid", Fields: []session.FieldError{{Name: "cursor", Message: "pass the next value of a previous page unchanged"}}}
		}
		after = k
	}
	page := &session.CallPage{Items: []*session.Call{}}
	err := s.readApplied(func(tx *bolt.Tx) error {
		index := tx.Bucket(bucketNames[bByStart])
		if opts.State == session.FilterActive {
			index = tx.Bucket(bucketNames[bActive])
		}
		calls := tx.Bucket(bucketNames[bCalls])
		cur := index.Cursor()
		var k, v, lastKey []byte
		if after == nil {
			k, v = cur.Last()
		} else if k, _ = cur.Seek(after); k == nil {
			k, v = cur.Last()
		} else {
			k, v = cur.Prev()
		}
		for ; k != nil; k, v = cur.Prev() {
			if opts.State == session.FilterEnded && (len(v) == 0 || v[0] != stateByte(session.StateEnded)) {
				continue
			}
			if len(page.Items) == opts.Limit {
				page.Next = base64.RawURLEncoding.EncodeToString(lastKey)
				break
			}
			raw := calls.Get(k[8:])
			if raw == nil {
				continue // an index entry whose call was purged in the same instant
			}
			c := new(session.Call)
			if err := json.Unmarshal(raw, c); err != nil {
				return fmt.Errorf("decode call %s: %w", k[8:], err)
			}
			page.Items = append(page.Items, c)
			lastKey = append(lastKey[:0], k...)
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("list calls", err)
	}
	return page, nil
}

// Session implements session.Store.
func (s *Store) Session(ctx context.Context, callID string) (*session.Session, error) {
	if e, ok := s.cache.get(callID); ok {
		return e.sess.Clone(), nil
	}
	var sess *session.Session
	err := s.read(func(r *reader) error {
		v := r.get(bSessions, []byte(callID))
		if v == nil {
			return notFound(callID)
		}
		var err error
		sess, err = decodeSession(v)
		return err
	})
	return sess, storeErr("read session", err)
}

// SessionJSON implements session.Store.
func (s *Store) SessionJSON(ctx context.Context, callID string) ([]byte, uint64, error) {
	if e, ok := s.cache.get(callID); ok {
		return e.json(), e.version, nil
	}
	var (
		js      []byte
		version uint64
	)
	err := s.read(func(r *reader) error {
		v := r.get(bSessions, []byte(callID))
		if v == nil {
			return notFound(callID)
		}
		if err := checkRecord(v); err != nil {
			return fmt.Errorf("session %s: %w", callID, err)
		}
		version = recordVersion(v)
		js = bytes.Clone(v[sessionHeader:])
		return nil
	})
	if err != nil {
		return nil, 0, storeErr("read session", err)
	}
	return js, version, nil
}

// ActiveCalls returns how many calls are active, counted in the index of
// active calls (for metrics; it reads the whole index).
func (s *Store) ActiveCalls(ctx context.Context) (int, error) {
	n := 0
	err := s.readApplied(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketNames[bActive]).Stats().KeyN
		return nil
	})
	return n, storeErr("count active calls", err)
}

// History implements session.Store.
func (s *Store) History(ctx context.Context, callID string, after uint64, limit int) ([]session.HistoryEntry, error) {
	var entries []session.HistoryEntry
	err := s.read(func(r *reader) error {
		rec := r.get(bSessions, []byte(callID))
		if rec == nil {
			return notFound(callID)
		}
		if err := checkRecord(rec); err != nil {
			return fmt.Errorf("session %s: %w", callID, err)
		}
		var err error
		entries, err = readHistory(r, recordHead(rec), recordVersion(rec), after, limit)
		if err != nil {
			return fmt.Errorf("call %s: %w", callID, err)
		}
		return nil
	})
	if err != nil {
		return nil, storeErr("read history", err)
	}
	return entries, nil
}

// Purge implements session.Store.
func (s *Store) Purge(ctx context.Context, before time.Time, max int) (int, error) {
	limit := timeKey(before, "")
	var purged []string
	err := s.writer.direct(func(tx *bolt.Tx) error {
		purged = purged[:0]
		byEnd, calls := tx.Bucket(bucketNames[bByEnd]), tx.Bucket(bucketNames[bCalls])
		var endKeys [][]byte
		cur := byEnd.Cursor()
		for k, _ := cur.First(); k != nil && bytes.Compare(k, limit) < 0 && len(endKeys) < max; k, _ = cur.Next() {
			endKeys = append(endKeys, bytes.Clone(k))
		}
		for _, k := range endKeys {
			id := k[8:]
			if raw := calls.Get(id); raw != nil {
				var c session.Call
				if err := json.Unmarshal(raw, &c); err != nil {
					return fmt.Errorf("decode call %s: %w", id, err)
				}
				if err := tx.Bucket(bucketNames[bByStart]).Delete(timeKey(c.StartedAt, c.ID)); err != nil {
					return err
				}
			}
			if rec := tx.Bucket(bucketNames[bSessions]).Get(id); len(rec) >= sessionHeader {
				if err := deleteHistory(tx, recordHead(rec)); err != nil {
					return err
				}
			}
			if err := deleteFlowData(tx, string(id)); err != nil {
				return err
			}
			if err := putAll(calls.Delete(id), tx.Bucket(bucketNames[bSessions]).Delete(id), byEnd.Delete(k)); err != nil {
				return err
			}
			purged = append(purged, string(id))
		}
		return nil
	})
	if err != nil {
		return 0, storeErr("purge ended calls", err)
	}
	s.cache.remove(purged...)
	return len(purged), nil
}

// timeKey is an index key that sorts by time, then call ID.
func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	copy(k[8:], id)
	return k
}

func stateByte(st session.State) byte {
	if st == session.StateEnded {
		return 'e'
	}
	return 'a'
}

// putAll returns the first error of a sequence of bucket operations.
func putAll(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
