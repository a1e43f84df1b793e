package pulsarbus

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// writerSchemas fetches, once per topic and version, the schema a message
// was written with, from Pulsar's admin REST API
// (GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema/{version}).
type writerSchemas struct {
	base   string
	client *http.Client
	mu     sync.Mutex
	cache  map[string]string
	// fetches makes the workers that meet a new version at once (every one
	// of them, on a busy start) share one request.
	fetches singleflight.Group
}

func newWriterSchemas(adminURL string, client *http.Client) *writerSchemas {
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &writerSchemas{base: strings.TrimRight(adminURL, "/"), client: client, cache: map[string]string{}}
}

// get returns the writer schema JSON; version is the message's 8-byte
// big-endian schema version.
func (w *writerSchemas) get(ctx context.Context, topic string, version []byte) (string, error) {
	if len(version) != 8 {
		return "", fmt.Errorf("schema version of %d bytes", len(version))
	}
	v := int64(binary.BigEndian.Uint64(version))
	key := fmt.Sprintf("%s@%d", topic, v)
	w.mu.Lock()
	s, ok := w.cache[key]
	w.mu.Unlock()
	if ok {
		return s, nil
	}
	data, err, _ := w.fetches.Do(key, func() (any, error) { return w.fetch(ctx, topic, key, v) })
	if err != nil {
		return "", err
	}
	return data.(string), nil
}

func (w *writerSchemas) fetch(ctx context.Context, topic, key string, v int64) (string, error) {
	rest, found := strings.CutPrefix(topic, "persistent://")
	if !found {
		return "", fmt.Errorf("topic %q is not persistent://", topic)
	}
	partition := strings.LastIndex(rest, "-partition-")
	if partition > 0 {
		rest = rest[:partition] // schemas belong to the partitioned topic
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/admin/v2/schemas/%s/schema/%d", w.base, rest, v), nil)
	if err != nil {
		return "", err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch writer schema %s: %w", key, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch writer schema %s: HTTP %d", key, resp.StatusCode)
	}
	var body struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("fetch writer schema %s: %w", key, err)
	}
	if body.Type != "AVRO" || body.Data == "" {
		return "", fmt.Errorf("writer schema %s is %q, not AVRO", key, body.Type)
	}
	w.mu.Lock()
	w.cache[key] = body.Data
	w.mu.Unlock()
	return body.Data, nil
}
