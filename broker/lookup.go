package broker

// PARTITIONED_METADATA, LOOKUP, GET_TOPICS_OF_NAMESPACE.
//
// Honoured: lookups answer Connect with the address the client reached this
// broker on (so the client reuses its connection), without requiring the
// topic to exist; partition counts come from partitioned-topic metadata (0
// for plain or unknown topics, i.e. auto-creation is non-partitioned);
// namespace listings include partitions and only persistent topics. Skipped:
// redirects (there is one broker), listener names, topic-list watchers
// (WATCH_TOPIC_LIST closes the connection, the Go client never sends it).

import (
	"sort"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

func (c *conn) handlePartitionedMetadata(cmd *wire.CommandPartitionedTopicMetadata) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	resp := &wire.CommandPartitionedTopicMetadataResponse{RequestId: &rid}
	name, err := parseTopic(cmd.GetTopic())
	if err == nil {
		err = c.authorize(name, ActionProduce, ActionConsume)
	}
	if err == nil {
		var n int
		n, err = c.b.PartitionCount(name.String())
		resp.Partitions = proto32(uint32(n))
	}
	if err != nil {
		code, msg := toServerError(err)
		resp.Response = wire.CommandPartitionedTopicMetadataResponse_Failed.Enum()
		resp.Error = code.Enum()
		resp.Message = &msg
	} else {
		resp.Response = wire.CommandPartitionedTopicMetadataResponse_Success.Enum()
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_PARTITIONED_METADATA_RESPONSE.Enum(), PartitionMetadataResponse: resp}, nil)
	return true
}

func (c *conn) handleLookup(cmd *wire.CommandLookupTopic) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	resp := &wire.CommandLookupTopicResponse{RequestId: &rid}
	name, err := parseTopic(cmd.GetTopic())
	if err == nil {
		err = c.authorize(name, ActionProduce, ActionConsume)
	}
	if err != nil {
		code, msg := toServerError(err)
		resp.Response = wire.CommandLookupTopicResponse_Failed.Enum()
		resp.Error = code.Enum()
		resp.Message = &msg
	} else {
		resp.Response = wire.CommandLookupTopicResponse_Connect.Enum()
		resp.BrokerServiceUrl = &c.lookupURL
		if c.b.cfg.auth.tlsConfig != nil {
			resp.BrokerServiceUrlTls = &c.lookupURL
		}
		resp.Authoritative = boolPtr(true)
	}
	c.send(&wire.BaseCommand{Type: wire.BaseCommand_LOOKUP_RESPONSE.Enum(), LookupTopicResponse: resp}, nil)
	return true
}

func (c *conn) handleGetTopicsOfNamespace(cmd *wire.CommandGetTopicsOfNamespace) bool {
	if cmd == nil {
		return false
	}
	rid := cmd.GetRequestId()
	if err := c.b.authorize(c.id.Load(), cmd.GetNamespace(), ActionProduce, ActionConsume); err != nil {
		c.sendError(rid, err)
		return true
	}
	topics, err := c.b.TopicsOfNamespace(cmd.GetNamespace())
	if err != nil {
		c.sendError(rid, err)
		return true
	}
	c.send(&wire.BaseCommand{
		Type: wire.BaseCommand_GET_TOPICS_OF_NAMESPACE_RESPONSE.Enum(),
		GetTopicsOfNamespaceResponse: &wire.CommandGetTopicsOfNamespaceResponse{
			RequestId: &rid, Topics: topics, Filtered: boolPtr(false), Changed: boolPtr(true),
		},
	}, nil)
	return true
}

// TopicsOfNamespace lists the persistent topics (partitions included) of
// "tenant/namespace", sorted.
func (b *Broker) TopicsOfNamespace(ns string) ([]string, error) {
	names, err := b.store.Topics()
	if err != nil {
		return nil, errorf(wire.ServerError_PersistenceError, "list topics: %v", err)
	}
	seen := map[string]bool{}
	b.mu.Lock()
	for k := range b.topics {
		names = append(names, k)
	}
	b.mu.Unlock()
	out := []string{}
	for _, n := range names {
		tn, err := parseTopic(n)
		if err != nil || tn.Domain != "persistent" || tn.NamespaceName() != ns || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

func proto32(v uint32) *uint32 { return &v }
func boolPtr(v bool) *bool     { return &v }
