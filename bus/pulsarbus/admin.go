package pulsarbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNoSchema is LatestSchema's answer for a topic that holds no schema
// (yet).
var ErrNoSchema = errors.New("topic has no schema")

// LatestSchema is the Avro schema JSON topic holds now, from
// GET /admin/v2/schemas/{tenant}/{ns}/{topic}/schema: ErrNoSchema when it
// holds none, an error when it holds one of another type.
func (t *Transport) LatestSchema(ctx context.Context, topic string) (string, error) {
	rest, ok := strings.CutPrefix(topic, "persistent://")
	if !ok {
		return "", fmt.Errorf("topic %q is not persistent://", topic)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(t.adminURL, "/")+"/admin/v2/schemas/"+rest+"/schema", nil)
	if err != nil {
		return "", err
	}
	resp, err := t.admin.Do(req)
	if err != nil {
		return "", fmt.Errorf("schema of %s: %w", topic, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return "", ErrNoSchema
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("schema of %s: HTTP %d: %s", topic, resp.StatusCode, msg)
	}
	var body struct {
		Type string `json:"type"`
		Data string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("schema of %s: %w", topic, err)
	}
	if body.Type != "AVRO" {
		return "", fmt.Errorf("schema of %s is %s, not AVRO", topic, body.Type)
	}
	return body.Data, nil
}

// DeleteTopics force-deletes the persistent topics of tenant/namespace that
// carry the topic prefix prefix (named "<prefix>-…", as producer.Config's
// TopicPrefix names them) and says how many went. It goes on past a topic
// it cannot delete and returns every such error joined.
func (t *Transport) DeleteTopics(ctx context.Context, tenant, namespace, prefix string) (int, error) {
	base := strings.TrimSuffix(t.adminURL, "/") + "/admin/v2/persistent/" + tenant + "/" + namespace
	call := func(method, u string, into any) error {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return err
		}
		resp, err := t.admin.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, bytes.TrimSpace(msg))
		}
		if into == nil {
			return nil
		}
		return json.NewDecoder(resp.Body).Decode(into)
	}
	var topics []string
	if err := call(http.MethodGet, base, &topics); err != nil {
		return 0, err
	}
	full := fmt.Sprintf("persistent://%s/%s/%s-", tenant, namespace, prefix)
	deleted := 0
	var errs []error
	for _, topic := range topics {
		name, ok := strings.CutPrefix(topic, full)
		if !ok {
			continue
		}
		if err := call(http.MethodDelete, base+"/"+url.PathEscape(prefix+"-"+name)+"?force=true", nil); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted++
	}
	return deleted, errors.Join(errs...)
}
