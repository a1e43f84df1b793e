package producer

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/edxbus/edxbus/schema"
)

// Headers a producing service (the openedx-events backend) sends besides
// the ce_* metadata: the topic it chose, with EVENT_BUS_TOPIC_PREFIX
// applied, and the event_key_field of its producer configuration.
const (
	HeaderTopic    = "Edxbus-Topic"
	HeaderKeyField = "Edxbus-Event-Key-Field"
)

// The media types of bodies the ingest reads besides JSON.
const (
	// ContentTypeAvro is the event's Avro binary, as openedx-events'
	// serializer writes it (event-bus-kafka labels its messages so).
	ContentTypeAvro = "application/avro"
	// ContentTypeNDJSON is a batch of Lines, one per line.
	ContentTypeNDJSON = "application/x-ndjson"
	// ContentTypeCloudEventsBatch is a JSON array of CloudEvents in
	// structured mode (the CloudEvents JSON batch format).
	ContentTypeCloudEventsBatch = "application/cloudevents-batch+json"
)

// Batch bounds: a batch is published in one outbox transaction, so it is
// kept to what one transaction should hold.
const (
	maxBatchEvents = 5000
	maxBatchFactor = 16 // times the single-event body limit
)

// bodyError is a request body that cannot be the event: the field names
// where, when known.
type bodyError struct {
	field string
	err   error
}

func (e *bodyError) Error() string { return e.err.Error() }
func (e *bodyError) Unwrap() error { return e.err }

// decodeBody reads the event data from a body of contentType: the event's
// Avro binary, or (any other type, as curl -d sends a form type) its JSON.
func decodeBody(ev *schema.Event, contentType string, body []byte) (any, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == ContentTypeAvro || mt == "avro/binary" {
		v, err := ev.Decode(body)
		if err != nil {
			return nil, &bodyError{err: fmt.Errorf("body is not a %s Avro binary: %w", ev.Type, err)}
		}
		return v, nil
	}
	if err := checkUTF8(body); err != nil {
		return nil, err
	}
	v, err := ev.ParseJSON(body)
	if err != nil {
		var fe *schema.FieldError
		if errors.As(err, &fe) {
			return nil, &bodyError{field: fe.Path, err: err}
		}
		return nil, &bodyError{err: err}
	}
	return v, nil
}

// checkUTF8 refuses JSON that is not valid UTF-8: Go's decoder would
// replace the bad bytes with U+FFFD and accept, silently storing a course
// key or a name other than the one sent.
func checkUTF8(body []byte) error {
	if utf8.Valid(body) {
		return nil
	}
	at := 0
	for at < len(body) {
		r, size := utf8.DecodeRune(body[at:])
		if r == utf8.RuneError && size <= 1 {
			break
		}
		at += size
	}
	return &bodyError{err: fmt.Errorf("body is not valid UTF-8 (byte %d)", at)}
}

// writeBodyError answers 400 for err (from decodeBody, metadata or a batch
// line): quoted values hidden, the field and the line named.
func writeBodyError(w http.ResponseWriter, err error, line int) {
	resp := errorResponse{Error: err.Error(), Line: line}
	var (
		be *bodyError
		ne *NotEnabledError
		te *TopicError
		ke *schema.KeyFieldError
	)
	switch {
	case errors.As(err, &be):
		resp.Field = be.field
	case errors.As(err, &ne):
		resp.Field = "event_type"
	case errors.As(err, &te):
		resp.Field = "topic"
	case errors.As(err, &ke):
		resp.Field = "event_key_field"
	}
	if resp.Field != "" && schema.IsPIIKeyField(resp.Field) {
		// Personal data is not echoed, as clients and proxies log error
		// responses; every other value is shown, as the CLI shows it.
		resp.Error = unquote(resp.Error)
	}
	if line > 0 {
		resp.Error = fmt.Sprintf("line %d: %s", line, resp.Error)
	}
	var tooLarge *TooLargeError
	status := http.StatusBadRequest
	if errors.As(err, &tooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	writeJSON(w, status, resp)
}

// batchResponse answers an accepted batch: one result per event, in order.
type batchResponse struct {
	Accepted int              `json:"accepted"`
	Results  []ingestResponse `json:"results"`
}

// postBatch serves POST /v1/events: many events in one request, as NDJSON
// Lines or a CloudEvents JSON batch, accepted or refused as a whole.
func (in *ingest) postBatch(w http.ResponseWriter, r *http.Request) {
	if !in.authenticate(w, r) {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var parse func([]byte) ([]Outgoing, []int, error)
	switch mt {
	case ContentTypeNDJSON, "application/jsonl":
		parse = parseNDJSONBatch
	case ContentTypeCloudEventsBatch:
		parse = parseCloudEventsBatch
	default:
		writeError(w, http.StatusUnsupportedMediaType,
			fmt.Sprintf("a batch is %s or %s", ContentTypeNDJSON, ContentTypeCloudEventsBatch), "content-type")
		return
	}
	body, ok := in.readBody(w, r, maxBatchFactor*in.maxBody)
	if !ok {
		return
	}
	if mt == ContentTypeCloudEventsBatch {
		// NDJSON is checked line by line, so that the error names the line.
		if err := checkUTF8(body); err != nil {
			writeBodyError(w, err, 0)
			return
		}
	}
	events, lines, err := parse(body)
	var le *LineError
	switch {
	case errors.As(err, &le):
		writeBodyError(w, le.Err, le.Line)
		return
	case err != nil:
		writeBodyError(w, err, 0)
		return
	case len(events) == 0:
		writeError(w, http.StatusBadRequest, "empty batch", "")
		return
	case len(events) > maxBatchEvents:
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch of %d events, over %d", len(events), maxBatchEvents), "")
		return
	}
	for i, e := range events {
		if e.Topic == "" && !in.p.Enabled(e.Meta.EventType) {
			writeBodyError(w, &NotEnabledError{EventType: e.Meta.EventType}, lines[i])
			return
		}
	}
	acc, err := in.p.PublishBatch(r.Context(), events...)
	var be *BatchError
	if errors.As(err, &be) {
		writeBodyError(w, be.Err, lines[be.Index])
		return
	}
	if in.publishFailed(w, r, err, "batch", "") {
		return
	}
	resp := batchResponse{Accepted: len(acc), Results: make([]ingestResponse, len(acc))}
	for i, a := range acc {
		resp.Results[i] = ingestResponse{ID: a.EventID, Topics: a.Topics, Duplicate: a.Duplicate}
	}
	writeJSON(w, http.StatusAccepted, resp)
}

// parseNDJSONBatch reads Lines (with optional topic and event_key_field),
// and the line number of each.
func parseNDJSONBatch(body []byte) ([]Outgoing, []int, error) {
	lines, err := readLines(bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	out, numbers := make([]Outgoing, len(lines)), make([]int, len(lines))
	for i, l := range lines {
		numbers[i] = l.number
		if out[i], err = l.outgoing(); err != nil {
			return nil, nil, &LineError{Line: l.number, Err: err}
		}
	}
	return out, numbers, nil
}

// cloudEvent is one event of a CloudEvents JSON batch, in structured mode.
// The openedx-events metadata that is not a CloudEvents attribute travels
// as extension attributes (minorversion, sourcehost, sourcelib), and the
// topic and key field as edxbustopic and edxbuskeyfield.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Source          string          `json:"source"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
	MinorVersion    json.Number     `json:"minorversion"`
	SourceHost      string          `json:"sourcehost"`
	SourceLib       string          `json:"sourcelib"`
	Topic           string          `json:"edxbustopic"`
	KeyField        string          `json:"edxbuskeyfield"`
}

// parseCloudEventsBatch reads a JSON array of structured CloudEvents: data
// as JSON, or data_base64 with datacontenttype application/avro.
func parseCloudEventsBatch(body []byte) ([]Outgoing, []int, error) {
	var batch []cloudEvent
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&batch); err != nil {
		return nil, nil, &bodyError{err: fmt.Errorf("a CloudEvents batch is a JSON array of events: %w", err)}
	}
	out, numbers := make([]Outgoing, len(batch)), make([]int, len(batch))
	for i, ce := range batch {
		o, err := ce.outgoing()
		if err != nil {
			return nil, nil, &LineError{Line: i + 1, Err: err}
		}
		out[i], numbers[i] = o, i+1
	}
	return out, numbers, nil
}

func (ce cloudEvent) outgoing() (Outgoing, error) {
	if ce.SpecVersion != "1.0" {
		return Outgoing{}, &bodyError{field: "specversion", err: fmt.Errorf("specversion %q: want 1.0", ce.SpecVersion)}
	}
	ev, err := schema.Lookup(ce.Type)
	if err != nil {
		return Outgoing{}, &bodyError{field: "type", err: err}
	}
	attrs := map[string]string{schema.PropID: ce.ID, schema.PropTime: ce.Time, schema.PropSource: ce.Source,
		schema.PropMinorVersion: ce.MinorVersion.String(), schema.PropSourceHost: ce.SourceHost, schema.PropSourceLib: ce.SourceLib}
	meta, field, err := metadataFrom(ce.Type, func(prop string) string { return attrs[prop] })
	if err != nil {
		return Outgoing{}, &bodyError{field: field, err: err}
	}
	var data any
	switch {
	case ce.DataBase64 != "":
		raw, err := base64.StdEncoding.DecodeString(ce.DataBase64)
		if err != nil {
			return Outgoing{}, &bodyError{field: "data_base64", err: err}
		}
		data, err = decodeBody(ev, ce.DataContentType, raw)
		if err != nil {
			return Outgoing{}, err
		}
	case len(ce.Data) > 0:
		if data, err = decodeBody(ev, "application/json", ce.Data); err != nil {
			return Outgoing{}, err
		}
	default:
		return Outgoing{}, &bodyError{field: "data", err: errors.New("no data or data_base64")}
	}
	return Outgoing{Meta: meta, Data: data, Topic: ce.Topic, KeyField: ce.KeyField}, nil
}
