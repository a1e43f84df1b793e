package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Layout of a data directory:
//
//	LOCK                          flock held while a Store has it open
//	meta/<key>                    one file per metadata key
//	topics/<topic>/ledger         the topic's ledger id, decimal
//	topics/<topic>/<first id>.seg segment files, 20-digit zero-padded
//	topics/<topic>/cursors/<sub>  one JSON file per durable subscription
//
// Every <name> is escaped by escapeName, so no name contains '.'; names with
// a '.' are temporary files or directories being created or deleted, and are
// removed on Open.
const (
	metaDirName    = "meta"
	topicsDirName  = "topics"
	ledgerFileName = "ledger"
	cursorsDirName = "cursors"
	segmentSuffix  = ".seg"
)

// ErrLocked is returned by Open when another Store (in this process or
// another) has the data directory open.
var ErrLocked = errors.New("storage: data directory is in use by another process")

type diskStore struct {
	dir  string
	cfg  diskConfig
	lock *os.File

	mu         sync.Mutex
	closed     bool
	logs       map[string]*diskLog
	lastLedger uint64
}

// Open opens (creating it if needed) the data directory dir and takes an
// exclusive lock on it: a second Open of the same directory, from this process
// or another, fails with ErrLocked until the first Store is closed or its
// process exits. Logs are opened lazily by OpenLog; recovery of a topic's
// segments happens then.
func Open(dir string, opts ...Option) (Store, error) {
	cfg := defaultDiskConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, metaDirName), filepath.Join(dir, topicsDirName)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("storage: create %s: %w", d, err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &diskStore{dir: dir, cfg: cfg, lock: lock, logs: map[string]*diskLog{}}
	if err := s.removeLeftovers(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// removeLeftovers deletes temporary files and half-created or half-deleted
// topic directories left by a crash, and notes the highest ledger id in use so
// that new topics get higher ones even if the clock went back.
func (s *diskStore) removeLeftovers() error {
	for _, d := range []string{s.metaDir(), s.topicsDir()} {
		ents, err := os.ReadDir(d)
		if err != nil {
			return fmt.Errorf("storage: %w", err)
		}
		for _, e := range ents {
			if strings.Contains(e.Name(), ".") {
				if err := os.RemoveAll(filepath.Join(d, e.Name())); err != nil {
					return fmt.Errorf("storage: remove leftover: %w", err)
				}
				continue
			}
			if d == s.topicsDir() {
				if id, err := readLedger(filepath.Join(d, e.Name())); err == nil && id > s.lastLedger {
					s.lastLedger = id
				}
			}
		}
	}
	return nil
}

func (s *diskStore) metaDir() string   { return filepath.Join(s.dir, metaDirName) }
func (s *diskStore) topicsDir() string { return filepath.Join(s.dir, topicsDirName) }
func (s *diskStore) topicDir(topic string) string {
	return filepath.Join(s.topicsDir(), escapeName(topic))
}

func (s *diskStore) OpenLog(topic string, create bool) (Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return nil, ErrClosed
		}
		l, ok := s.logs[topic]
		if !ok {
			break
		}
		if !l.isClosed() {
			return l, nil
		}
		// Being closed by someone else: wait until its files are released
		// before opening them again.
		s.mu.Unlock()
		<-l.gone
		s.mu.Lock()
	}
	dir := s.topicDir(topic)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, ErrNotFound
		}
		if err := s.createTopicDir(dir); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	l, err := openLog(s, topic, dir)
	if err != nil {
		return nil, err
	}
	s.logs[topic] = l
	return l, nil
}

// createTopicDir builds the directory under a temporary name and renames it
// into place, so a crash never leaves a topic without its ledger id.
func (s *diskStore) createTopicDir(dir string) error {
	tmp := dir + ".creating"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("storage: create topic: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, cursorsDirName), 0o755); err != nil {
		return fmt.Errorf("storage: create topic: %w", err)
	}
	s.lastLedger = nextLedgerID(s.lastLedger)
	ledger := []byte(strconv.FormatUint(s.lastLedger, 10) + "\n")
	if err := writeFileAtomic(tmp, ledgerFileName, ledger, s.cfg.sync); err != nil {
		return fmt.Errorf("storage: create topic: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("storage: create topic: %w", err)
	}
	return syncDir(s.topicsDir(), s.cfg.sync)
}

func readLedger(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, ledgerFileName))
	if err != nil {
		return 0, fmt.Errorf("storage: read ledger id: %w", err)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 63)
	if err != nil {
		return 0, fmt.Errorf("storage: ledger id in %s: %w", dir, err)
	}
	return id, nil
}

func (s *diskStore) forget(l *diskLog) {
	s.mu.Lock()
	if s.logs[l.topic] == l {
		delete(s.logs, l.topic)
	}
	s.mu.Unlock()
}

func (s *diskStore) Topics() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	return listNames(s.topicsDir(), "")
}

// listNames returns the unescaped names of the entries of dir that start
// with prefix, sorted, skipping temporary files.
func listNames(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	out := []string{}
	for _, e := range ents {
		name, ok := unescapeName(e.Name())
		if ok && strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *diskStore) DeleteTopic(topic string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed {
			return ErrClosed
		}
		l, ok := s.logs[topic]
		if !ok {
			break
		}
		s.mu.Unlock()
		_ = l.Close() // ErrClosed when someone else closes it: fine either way
		<-l.gone
		s.mu.Lock()
	}
	dir := s.topicDir(topic)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	// Rename first: the topic is gone at once and for good even if removing
	// the files is interrupted (Open removes the leftover).
	trash := dir + ".deleted"
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("storage: delete topic: %w", err)
	}
	if err := os.Rename(dir, trash); err != nil {
		return fmt.Errorf("storage: delete topic: %w", err)
	}
	if err := syncDir(s.topicsDir(), s.cfg.sync); err != nil {
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("storage: delete topic: %w", err)
	}
	return nil
}

func (s *diskStore) checkOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

func (s *diskStore) PutMeta(key string, value []byte) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := writeFileAtomic(s.metaDir(), escapeName(key), value, s.cfg.sync); err != nil {
		return fmt.Errorf("storage: put meta %q: %w", key, err)
	}
	return nil
}

func (s *diskStore) GetMeta(key string) ([]byte, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.metaDir(), escapeName(key)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("storage: get meta %q: %w", key, err)
	}
	return b, nil
}

func (s *diskStore) ListMeta(prefix string) ([]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return listNames(s.metaDir(), prefix)
}

func (s *diskStore) DeleteMeta(key string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return removeDurably(s.metaDir(), escapeName(key), s.cfg.sync)
}

func (s *diskStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	logs := make([]*diskLog, 0, len(s.logs))
	for _, l := range s.logs {
		logs = append(logs, l)
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range logs {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
		<-l.gone
	}
	// Closing the file releases the flock.
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("storage: release lock: %w", err))
	}
	return errors.Join(errs...)
}

// writeFileAtomic replaces dir/name with data: a reader (or a restart after
// a crash) sees the old content or the new, never a mix.
func writeFileAtomic(dir, name string, data []byte, doSync bool) error {
	f, err := os.CreateTemp(dir, name+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil && doSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir, doSync)
}

// removeDurably deletes dir/name if present.
func removeDurably(dir, name string, doSync bool) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	return syncDir(dir, doSync)
}

// syncDir fsyncs a directory so that a create, rename or remove in it
// survives a power failure.
func syncDir(dir string, doSync bool) error {
	if !doSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("storage: sync dir: %w", err)
	}
	return nil
}
