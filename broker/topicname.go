package broker

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edxbus/edxbus/broker/internal/wire"
)

// topicName is a parsed, fully-qualified topic name.
type topicName struct {
	Domain    string // persistent or non-persistent
	Tenant    string
	Namespace string
	Local     string // includes the -partition-N suffix, if any
	Partition int    // -1 when Local is not a partition
}

const partitionSuffix = "-partition-"

// parseTopic accepts Pulsar's short ("my-topic", "tenant/ns/my-topic") and
// full ("persistent://tenant/ns/my-topic") forms.
func parseTopic(s string) (topicName, error) {
	if !utf8.ValidString(s) {
		// Pulsar's names are Java strings; this broker labels metrics with them.
		return topicName{}, errorf(wire.ServerError_InvalidTopicName, "Invalid topic name %q: not UTF-8", s)
	}
	domain := "persistent"
	rest := s
	if i := strings.Index(s, "://"); i >= 0 {
		domain, rest = s[:i], s[i+3:]
		if domain != "persistent" && domain != "non-persistent" {
			return topicName{}, errorf(wire.ServerError_InvalidTopicName, "Invalid topic domain in %q", s)
		}
	} else if !strings.Contains(s, "/") {
		rest = "public/default/" + s
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return topicName{}, errorf(wire.ServerError_InvalidTopicName, "Invalid topic name %q", s)
	}
	tn := topicName{Domain: domain, Tenant: parts[0], Namespace: parts[1], Local: parts[2], Partition: -1}
	if i := strings.LastIndex(tn.Local, partitionSuffix); i > 0 {
		if n, err := strconv.Atoi(tn.Local[i+len(partitionSuffix):]); err == nil && n >= 0 {
			tn.Partition = n
		}
	}
	return tn, nil
}

// checkSubscriptionName refuses an empty name and one that is not UTF-8,
// for the same reason as parseTopic.
func checkSubscriptionName(sub string) error {
	if sub == "" || !utf8.ValidString(sub) {
		return errorf(wire.ServerError_InvalidTopicName, "subscription name %q: want a non-empty UTF-8 name", sub)
	}
	return nil
}

func (t topicName) String() string {
	return t.Domain + "://" + t.Tenant + "/" + t.Namespace + "/" + t.Local
}

// Base is the topic without its -partition-N suffix.
func (t topicName) Base() topicName {
	if t.Partition < 0 {
		return t
	}
	b := t
	b.Local = t.Local[:strings.LastIndex(t.Local, partitionSuffix)]
	b.Partition = -1
	return b
}

// SchemaID is Pulsar's schema id: tenant/namespace/topic without partition.
func (t topicName) SchemaID() string {
	b := t.Base()
	return b.Tenant + "/" + b.Namespace + "/" + b.Local
}

// NamespaceName is "tenant/namespace".
func (t topicName) NamespaceName() string { return t.Tenant + "/" + t.Namespace }

// PartitionName is the name of partition i of t.
func (t topicName) PartitionName(i int) string {
	return t.Base().String() + partitionSuffix + strconv.Itoa(i)
}
