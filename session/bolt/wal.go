package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// The write-ahead log makes a group of writes durable with one append and
// one fdatasync (a bbolt commit costs two, and rewrites every page the
// group touched); bbolt catches up behind it in large commits (applier.go)
// and is the state the log is replayed onto after a crash. This is etcd's
// design, at the size of this store.
//
// The log is one file, callctx.wal, written from the start again after
// each checkpoint. A record is one group:
//
//	crc32c  uint32   of everything after it
//	length  uint32   of the payload
//	epoch   uint64   the log's epoch: bumped whenever writing restarts at 0
//	gen     uint64   the group's number, one more than the previous record's
//	payload          the group's changes (see encodeChanges)
//
// bbolt's meta bucket holds the epoch and the offset up to which the log
// is applied, committed with what it covers. Replay reads records from that
// offset while their epoch matches, their generations follow on and their
// checksums hold: what follows the last good record (a torn write, a
// record of an older epoch, the zeros written ahead) ends the log.

const (
	walFileName   = "callctx.wal"
	walHeader     = 24
	walZeroChunk  = 4 << 20  // the file is zero-filled this far ahead, so that an fdatasync writes data, not metadata
	walRewindSize = 64 << 20 // past this, the log starts again at 0 once bbolt has caught up (walRewindAt)
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// walRewindAt is walRewindSize; tests lower it.
var walRewindAt int64 = walRewindSize

// wal is the log file. Only the writer goroutine appends to it.
type wal struct {
	f      *os.File
	epoch  uint64
	gen    uint64 // of the last record written
	off    int64  // where the next record goes
	zeroed int64  // the file is zero-filled up to here
	buf    []byte
}

// openWAL opens (creating) the log in dir.
func openWAL(path string) (*wal, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open write-ahead log: %w", err)
	}
	return &wal{f: f, zeroed: st.Size()}, nil
}

// walRecord is one group read back from the log.
type walRecord struct {
	gen     uint64
	end     int64 // the offset after it
	payload []byte
}

// replay returns the records of epoch from offset off on, the first being
// generation prevGen+1, until the log ends (see above).
func (w *wal) replay(epoch uint64, off int64, prevGen uint64) ([]walRecord, error) {
	var out []walRecord
	hdr := make([]byte, walHeader)
	for {
		if _, err := w.f.ReadAt(hdr, off); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("read write-ahead log: %w", err)
		}
		sum, n := binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
		recEpoch, gen := binary.BigEndian.Uint64(hdr[8:16]), binary.BigEndian.Uint64(hdr[16:24])
		if recEpoch != epoch || gen != prevGen+1 || n > 1<<30 {
			return out, nil
		}
		payload := make([]byte, n)
		if _, err := w.f.ReadAt(payload, off+walHeader); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil // torn at the end of the file
			}
			return nil, fmt.Errorf("read write-ahead log: %w", err)
		}
		crc := crc32.Update(crc32.Checksum(hdr[4:], crcTable), crcTable, payload)
		if crc != sum {
			return out, nil
		}
		off += walHeader + int64(n)
		out = append(out, walRecord{gen: gen, end: off, payload: payload})
		prevGen = gen
	}
}

// restart has the log start again at offset 0 in a new epoch, the next
// record being generation gen+1. The caller has made bbolt durably say
// that epoch starts at 0 first.
func (w *wal) restart(epoch, gen uint64) {
	w.epoch, w.gen, w.off = epoch, gen, 0
}

// append writes one record holding payload and makes it durable. It
// returns the offset after the record.
func (w *wal) append(payload []byte) (int64, error) {
	n := walHeader + len(payload)
	if cap(w.buf) < n {
		w.buf = make([]byte, n, n+n/2)
	}
	b := w.buf[:n]
	binary.BigEndian.PutUint32(b[4:8], uint32(len(payload)))
	binary.BigEndian.PutUint64(b[8:16], w.epoch)
	binary.BigEndian.PutUint64(b[16:24], w.gen+1)
	copy(b[walHeader:], payload)
	binary.BigEndian.PutUint32(b[0:4], crc32.Checksum(b[4:], crcTable))
	if end := w.off + int64(n); end > w.zeroed {
		if err := w.zeroAhead(end); err != nil {
			return 0, err
		}
	}
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		return 0, fmt.Errorf("write write-ahead log: %w", err)
	}
	if err := fdatasync(w.f); err != nil {
		return 0, fmt.Errorf("sync write-ahead log: %w", err)
	}
	w.gen++
	w.off += int64(n)
	return w.off, nil
}

// zeroAhead extends the zero-filled part of the file past end. The zeros
// need no sync of their own: the fdatasync of the record written into them
// covers the file's new size.
func (w *wal) zeroAhead(end int64) error {
	size := max(end, w.zeroed) + walZeroChunk
	zeros := make([]byte, 256<<10)
	for off := w.zeroed; off < size; off += int64(len(zeros)) {
		if _, err := w.f.WriteAt(zeros[:min(int64(len(zeros)), size-off)], off); err != nil {
			return fmt.Errorf("extend write-ahead log: %w", err)
		}
	}
	w.zeroed = size
	return nil
}

func (w *wal) close() error { return w.f.Close() }
