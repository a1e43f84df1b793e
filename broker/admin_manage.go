package broker

// The write side of the admin REST layer and its Prometheus metrics, in
// Pulsar's paths and JSON:
//
//	tenants        GET /admin/v2/tenants, GET|PUT|DELETE /admin/v2/tenants/{t}
//	namespaces     GET /admin/v2/namespaces/{t}, GET|PUT|DELETE /admin/v2/namespaces/{t}/{ns}
//	policies       GET|PUT /…/{t}/{ns}/schemaCompatibilityStrategy, GET|POST …/schemaValidationEnforced,
//	               GET|POST …/deduplication, GET|POST …/isAllowAutoUpdateSchema
//	topics         PUT|DELETE /admin/v2/persistent/{t}/{ns}/{topic}, GET …/partitioned,
//	               PUT|GET|POST …/{topic}/partitions, GET …/{topic}/partitioned-stats, GET …/{topic}/lastMessageId
//	subscriptions  GET …/{topic}/subscriptions, PUT|DELETE …/{topic}/subscription/{sub},
//	               POST …/subscription/{sub}/resetcursor/{timestampMs}, POST …/subscription/{sub}/resetcursor,
//	               POST …/subscription/{sub}/skip_all
//	schemas        POST /admin/v2/schemas/{t}/{ns}/{topic}/schema, DELETE …/schema[?force=true], POST …/compatibility
//	lookup         GET /lookup/v2/topic/persistent/{t}/{ns}/{topic}
//	metrics        GET /metrics
//
// Skipped (answered 404 by the router): peeking messages, internal stats,
// skipping n messages, expiry, backlog quotas, clusters and bundles.
// Tenants and namespaces are names the broker remembers (in its store) for
// the listing endpoints; it does not refuse topics in a namespace nobody
// created, as a standalone Pulsar with auto-creation would not either.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edxbus/edxbus/broker/internal/storage"
	"github.com/edxbus/edxbus/broker/internal/wire"
)

const (
	metaTenant    = "admin/tenant/"
	metaNamespace = "admin/namespace/"
)

// registerManage adds the endpoints above to the admin mux.
func (b *Broker) registerManage(mux *http.ServeMux) {
	// public/default exists from the start, as on a standalone Pulsar.
	_ = b.store.PutMeta(metaTenant+"public", []byte("{}"))
	_ = b.store.PutMeta(metaNamespace+"public/default", []byte("{}"))

	mux.HandleFunc("GET /admin/v2/tenants", func(w http.ResponseWriter, _ *http.Request) { b.listMeta(w, metaTenant, "") })
	mux.HandleFunc("GET /admin/v2/tenants/{t}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := b.store.GetMeta(metaTenant + r.PathValue("t")); err != nil {
			adminError(w, http.StatusNotFound, "Tenant does not exist")
			return
		}
		adminJSON(w, map[string]any{"adminRoles": []string{}, "allowedClusters": []string{"standalone"}})
	})
	mux.HandleFunc("PUT /admin/v2/tenants/{t}", func(w http.ResponseWriter, r *http.Request) {
		b.createMeta(w, metaTenant+r.PathValue("t"), "Tenant already exists")
	})
	mux.HandleFunc("DELETE /admin/v2/tenants/{t}", func(w http.ResponseWriter, r *http.Request) {
		t := r.PathValue("t")
		if names, _ := b.store.ListMeta(metaNamespace + t + "/"); len(names) > 0 {
			adminError(w, http.StatusConflict, "The tenant still has active namespaces")
			return
		}
		b.deleteMeta(w, metaTenant+t, "Tenant does not exist")
	})
	mux.HandleFunc("GET /admin/v2/namespaces/{t}", func(w http.ResponseWriter, r *http.Request) {
		b.listMeta(w, metaNamespace+r.PathValue("t")+"/", r.PathValue("t")+"/")
	})
	mux.HandleFunc("PUT /admin/v2/namespaces/{t}/{ns}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := b.store.GetMeta(metaTenant + r.PathValue("t")); err != nil {
			adminError(w, http.StatusNotFound, "Tenant does not exist")
			return
		}
		b.createMeta(w, metaNamespace+r.PathValue("t")+"/"+r.PathValue("ns"), "Namespace already exists")
	})
	mux.HandleFunc("DELETE /admin/v2/namespaces/{t}/{ns}", func(w http.ResponseWriter, r *http.Request) {
		ns := r.PathValue("t") + "/" + r.PathValue("ns")
		if topics, _ := b.TopicsOfNamespace(ns); len(topics) > 0 && r.URL.Query().Get("force") != "true" {
			adminError(w, http.StatusConflict, "Cannot delete non empty namespace")
			return
		}
		b.deleteMeta(w, metaNamespace+ns, "Namespace does not exist")
	})
	mux.HandleFunc("GET /admin/v2/namespaces/{t}/{ns}", func(w http.ResponseWriter, r *http.Request) {
		p, err := b.NamespacePolicies(r.PathValue("t") + "/" + r.PathValue("ns"))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, p)
	})
	b.registerPolicies(mux)
	b.registerPermissions(mux)

	topicPath := "/admin/v2/persistent/{tenant}/{ns}/{topic}"
	mux.HandleFunc("PUT "+topicPath, func(w http.ResponseWriter, r *http.Request) {
		b.noContent(w, b.CreateTopic(topicFromPath(r)))
	})
	mux.HandleFunc("DELETE "+topicPath, func(w http.ResponseWriter, r *http.Request) {
		b.noContent(w, b.DeleteTopic(topicFromPath(r), r.URL.Query().Get("force") == "true"))
	})
	mux.HandleFunc("GET /admin/v2/persistent/{tenant}/{ns}/partitioned", func(w http.ResponseWriter, r *http.Request) {
		topics, err := b.PartitionedTopics(r.PathValue("tenant") + "/" + r.PathValue("ns"))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, nonNil(topics))
	})
	mux.HandleFunc("PUT "+topicPath+"/partitions", func(w http.ResponseWriter, r *http.Request) {
		n, err := partitionsBody(r)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		b.noContent(w, b.CreatePartitionedTopic(topicFromPath(r), n))
	})
	mux.HandleFunc("POST "+topicPath+"/partitions", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusMethodNotAllowed, "updating the partition count is not supported by the embedded broker")
	})
	mux.HandleFunc("GET "+topicPath+"/partitions", func(w http.ResponseWriter, r *http.Request) {
		n, err := b.PartitionCount(topicFromPath(r))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, map[string]int{"partitions": n})
	})
	mux.HandleFunc("GET "+topicPath+"/partitioned-stats", func(w http.ResponseWriter, r *http.Request) {
		topic := topicFromPath(r)
		n, err := b.PartitionCount(topic)
		if err != nil || n == 0 {
			adminError(w, http.StatusNotFound, "Partitioned topic does not exist")
			return
		}
		parts := map[string]TopicStats{}
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s-partition-%d", topic, i)
			if st, err := b.Stats(name); err == nil {
				parts[name] = st
			}
		}
		adminJSON(w, map[string]any{"metadata": map[string]int{"partitions": n}, "partitions": parts})
	})
	mux.HandleFunc("GET "+topicPath+"/lastMessageId", func(w http.ResponseWriter, r *http.Request) {
		id, err := b.LastMessageID(topicFromPath(r))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, id)
	})
	mux.HandleFunc("GET "+topicPath+"/subscriptions", func(w http.ResponseWriter, r *http.Request) {
		subs, err := b.Subscriptions(topicFromPath(r))
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, nonNil(subs))
	})
	subPath := topicPath + "/subscription/{sub}"
	mux.HandleFunc("PUT "+subPath, func(w http.ResponseWriter, r *http.Request) {
		at, err := messageIDBody(r, MessageID{LedgerID: 1<<63 - 1, EntryID: 1<<63 - 1}) // latest by default, as Pulsar
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		b.noContent(w, b.CreateSubscription(topicFromPath(r), r.PathValue("sub"), at))
	})
	mux.HandleFunc("DELETE "+subPath, func(w http.ResponseWriter, r *http.Request) {
		b.noContent(w, b.DeleteSubscription(topicFromPath(r), r.PathValue("sub"), r.URL.Query().Get("force") == "true"))
	})
	mux.HandleFunc("POST "+subPath+"/resetcursor/{ts}", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.ParseInt(r.PathValue("ts"), 10, 64)
		if err != nil {
			adminError(w, http.StatusBadRequest, "timestamp must be milliseconds since the epoch")
			return
		}
		b.noContent(w, b.ResetCursorByTime(topicFromPath(r), r.PathValue("sub"), time.UnixMilli(ms)))
	})
	mux.HandleFunc("POST "+subPath+"/resetcursor", func(w http.ResponseWriter, r *http.Request) {
		at, err := messageIDBody(r, MessageID{LedgerID: -1, EntryID: -1})
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		b.noContent(w, b.ResetCursor(topicFromPath(r), r.PathValue("sub"), at))
	})
	mux.HandleFunc("POST "+subPath+"/skip_all", func(w http.ResponseWriter, r *http.Request) {
		b.noContent(w, b.SkipAll(topicFromPath(r), r.PathValue("sub")))
	})

	schemaPath := "/admin/v2/schemas/{tenant}/{ns}/{topic}"
	mux.HandleFunc("POST "+schemaPath+"/schema", func(w http.ResponseWriter, r *http.Request) {
		info, err := schemaBody(r)
		if err != nil {
			adminError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		v, err := b.PutSchema(topicFromPath(r), info)
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, map[string]any{"version": map[string]int64{"version": v}})
	})
	mux.HandleFunc("DELETE "+schemaPath+"/schema", func(w http.ResponseWriter, r *http.Request) {
		v, err := b.DeleteSchema(topicFromPath(r), r.URL.Query().Get("force") == "true")
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, map[string]any{"version": map[string]int64{"version": v}})
	})
	mux.HandleFunc("POST "+schemaPath+"/compatibility", func(w http.ResponseWriter, r *http.Request) {
		info, err := schemaBody(r)
		if err != nil {
			adminError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		ok, strategy, err := b.CheckSchemaCompatibility(topicFromPath(r), info)
		if err != nil {
			adminError(w, adminStatus(err), err.Error())
			return
		}
		adminJSON(w, map[string]any{"compatibility": ok, "schemaCompatibilityStrategy": strategy})
	})
	mux.HandleFunc("GET /lookup/v2/topic/persistent/{t}/{ns}/{topic}", func(w http.ResponseWriter, r *http.Request) {
		urls := map[string]string{"brokerUrl": b.URL(), "httpUrl": b.AdminURL()}
		if b.cfg.auth.tlsConfig != nil {
			urls["brokerUrlTls"], urls["httpUrlTls"] = b.URL(), b.AdminURL()
		}
		adminJSON(w, urls)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metricsRegistry(), promhttp.HandlerOpts{}))
}

func (b *Broker) registerPolicies(mux *http.ServeMux) {
	nsPath := "/admin/v2/namespaces/{t}/{ns}/"
	type policy struct {
		name   string
		method string
		get    func(NamespacePolicies) any
		set    func(*NamespacePolicies, []byte) error
	}
	boolSetter := func(field func(*NamespacePolicies) **bool) func(*NamespacePolicies, []byte) error {
		return func(p *NamespacePolicies, body []byte) error {
			var v bool
			if err := json.Unmarshal(body, &v); err != nil {
				return errors.New("body must be true or false")
			}
			*field(p) = &v
			return nil
		}
	}
	for _, pol := range []policy{
		{"schemaCompatibilityStrategy", "PUT", func(p NamespacePolicies) any { return orDefault(p.SchemaCompatibility, b.cfg.compatibility) },
			func(p *NamespacePolicies, body []byte) error {
				var s string
				if err := json.Unmarshal(body, &s); err != nil {
					s = strings.Trim(strings.TrimSpace(string(body)), `"`)
				}
				s = strings.ToUpper(s)
				if s == "" || !validStrategy(s) {
					return fmt.Errorf("unknown schema compatibility strategy %q", s)
				}
				p.SchemaCompatibility = s
				return nil
			}},
		{"schemaValidationEnforced", "POST", func(p NamespacePolicies) any { return boolOr(p.SchemaValidationEnforced, b.cfg.schemaEnforced) },
			boolSetter(func(p *NamespacePolicies) **bool { return &p.SchemaValidationEnforced })},
		{"deduplication", "POST", func(p NamespacePolicies) any { return boolOr(p.Deduplication, b.cfg.dedup) },
			boolSetter(func(p *NamespacePolicies) **bool { return &p.Deduplication })},
		{"isAllowAutoUpdateSchema", "POST", func(p NamespacePolicies) any { return boolOr(p.AllowAutoUpdateSchema, true) },
			boolSetter(func(p *NamespacePolicies) **bool { return &p.AllowAutoUpdateSchema })},
	} {
		pol := pol
		mux.HandleFunc("GET "+nsPath+pol.name, func(w http.ResponseWriter, r *http.Request) {
			p, err := b.NamespacePolicies(r.PathValue("t") + "/" + r.PathValue("ns"))
			if err != nil {
				adminError(w, adminStatus(err), err.Error())
				return
			}
			adminJSON(w, pol.get(p))
		})
		mux.HandleFunc(pol.method+" "+nsPath+pol.name, func(w http.ResponseWriter, r *http.Request) {
			ns := r.PathValue("t") + "/" + r.PathValue("ns")
			body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			p, err := b.NamespacePolicies(ns)
			if err == nil {
				err = pol.set(&p, body)
				if err != nil {
					adminError(w, http.StatusBadRequest, err.Error())
					return
				}
				err = b.SetNamespacePolicies(ns, p)
			}
			b.noContent(w, err)
		})
	}
}

func orDefault(s, def string) string {
	if s == "" || s == "UNDEFINED" {
		return def
	}
	return s
}

func boolOr(v *bool, def bool) bool {
	if v == nil {
		return def
	}
	return *v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *Broker) noContent(w http.ResponseWriter, err error) {
	if err != nil {
		adminError(w, adminStatus(err), err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *Broker) createMeta(w http.ResponseWriter, key, exists string) {
	if _, err := b.store.GetMeta(key); err == nil {
		adminError(w, http.StatusConflict, exists)
		return
	}
	b.noContent(w, b.store.PutMeta(key, []byte("{}")))
}

func (b *Broker) deleteMeta(w http.ResponseWriter, key, missing string) {
	if _, err := b.store.GetMeta(key); errors.Is(err, storage.ErrNotFound) {
		adminError(w, http.StatusNotFound, missing)
		return
	}
	b.noContent(w, b.store.DeleteMeta(key))
}

// listMeta lists the names under prefix, each prefixed with show.
func (b *Broker) listMeta(w http.ResponseWriter, prefix, show string) {
	keys, err := b.store.ListMeta(prefix)
	if err != nil {
		adminError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []string{}
	for _, k := range keys {
		out = append(out, show+strings.TrimPrefix(k, prefix))
	}
	adminJSON(w, out)
}

// partitionsBody reads a bare number or {"partitions": N}.
func partitionsBody(r *http.Request) (int, error) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1024))
	var n int
	if err := json.Unmarshal(body, &n); err != nil {
		var obj struct {
			Partitions int `json:"partitions"`
		}
		if err := json.Unmarshal(body, &obj); err != nil {
			return 0, errors.New("body must be the partition count")
		}
		n = obj.Partitions
	}
	if n < 1 {
		return 0, errors.New("the partition count must be at least 1")
	}
	return n, nil
}

// messageIDBody reads an optional MessageId body.
func messageIDBody(r *http.Request, def MessageID) (MessageID, error) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	if len(strings.TrimSpace(string(body))) == 0 {
		return def, nil
	}
	var id MessageID
	if err := json.Unmarshal(body, &id); err != nil {
		return id, fmt.Errorf("body must be a message id: %w", err)
	}
	return id, nil
}

// schemaBody reads Pulsar's PostSchemaPayload {"type","schema","properties"}.
func schemaBody(r *http.Request) (SchemaInfo, error) {
	var body struct {
		Type       string            `json:"type"`
		Schema     string            `json:"schema"`
		Properties map[string]string `json:"properties"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		return SchemaInfo{}, fmt.Errorf("body must be {\"type\", \"schema\", \"properties\"}: %w", err)
	}
	t, ok := schemaTypeFromName(body.Type)
	if !ok {
		return SchemaInfo{}, fmt.Errorf("unknown schema type %q", body.Type)
	}
	return SchemaInfo{Type: t, Data: []byte(body.Schema), Properties: body.Properties}, nil
}

func schemaTypeFromName(name string) (wire.Schema_Type, bool) {
	for v := range wire.Schema_Type_name {
		t := wire.Schema_Type(v)
		if schemaTypeName(t) == strings.ToUpper(name) {
			return t, true
		}
	}
	if strings.EqualFold(name, "BYTES") {
		return wire.Schema_None, true
	}
	return 0, false
}

// metricsRegistry exports the broker's counters, computed from the same
// stats the admin API serves, on a registry of its own.
func (b *Broker) metricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(brokerCollector{b: b})
	return reg
}

type brokerCollector struct{ b *Broker }

var (
	descConnections = prometheus.NewDesc("pulsar_broker_connections", "Open client connections.", nil, nil)
	descMsgIn       = prometheus.NewDesc("pulsar_in_messages_total", "Messages received, per topic.", []string{"topic"}, nil)
	descMsgOut      = prometheus.NewDesc("pulsar_out_messages_total", "Messages dispatched, per topic.", []string{"topic"}, nil)
	descBytesIn     = prometheus.NewDesc("pulsar_in_bytes_total", "Bytes received, per topic.", []string{"topic"}, nil)
	descBytesOut    = prometheus.NewDesc("pulsar_out_bytes_total", "Bytes dispatched, per topic.", []string{"topic"}, nil)
	descEntries     = prometheus.NewDesc("pulsar_storage_entries", "Entries stored, per topic.", []string{"topic"}, nil)
	descProducers   = prometheus.NewDesc("pulsar_producers_count", "Producers, per topic.", []string{"topic"}, nil)
	descBacklog     = prometheus.NewDesc("pulsar_msg_backlog", "Backlog (entries), per subscription.", []string{"topic", "subscription"}, nil)
	descConsumers   = prometheus.NewDesc("pulsar_consumers_count", "Consumers, per subscription.", []string{"topic", "subscription"}, nil)
)

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descMsgIn, descMsgOut, descBytesIn, descBytesOut, descEntries, descProducers, descBacklog, descConsumers} {
		ch <- d
	}
}

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.mu.Lock()
	conns := len(c.b.conns)
	c.b.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descConnections, prometheus.GaugeValue, float64(conns))
	topics, err := c.b.Topics()
	if err != nil {
		return
	}
	for _, t := range topics {
		st, err := c.b.Stats(t)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descMsgIn, prometheus.CounterValue, float64(st.MsgInCounter), t)
		ch <- prometheus.MustNewConstMetric(descMsgOut, prometheus.CounterValue, float64(st.MsgOutCounter), t)
		ch <- prometheus.MustNewConstMetric(descBytesIn, prometheus.CounterValue, float64(st.BytesInCounter), t)
		ch <- prometheus.MustNewConstMetric(descBytesOut, prometheus.CounterValue, float64(st.BytesOutCounter), t)
		ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(st.StorageEntries), t)
		ch <- prometheus.MustNewConstMetric(descProducers, prometheus.GaugeValue, float64(len(st.Publishers)), t)
		for name, sub := range st.Subscriptions {
			ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(sub.MsgBacklog), t, name)
			ch <- prometheus.MustNewConstMetric(descConsumers, prometheus.GaugeValue, float64(len(sub.Consumers)), t, name)
		}
	}
}
