package main

import (
	"encoding/json"
	"strconv"

	"github.com/enricher/enricher/codecs"
)

// Order is the program's own input record.
type Order struct {
	ID          string `json:"id"`
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amount_cents"`
}

// OrderWithTier is the program's own output record: an order and its customer's tier.
type OrderWithTier struct {
	Order
	Tier string `json:"tier"`
}

// tierName names the tier a score stands for; any other score has no name.
func tierName(score int64) string {
	switch score {
	case 1:
		return "bronze"
	case 2:
		return "silver"
	case 3:
		return "gold"
	case codecs.NoScore:
		return "none"
	}
	return "unknown"
}

// orderFormat reads orders and tiers and writes orders with their tier. A record it cannot
// read is a *codecs.DecodeError, so the processor dead-letters it and goes on.
func orderFormat() codecs.Format {
	return codecs.Typed[Order]{
		DecodeInput: func(key string, value []byte) (Order, error) {
			var o Order
			if err := json.Unmarshal(value, &o); err != nil {
				return Order{}, codecs.Reject(codecs.ReasonInvalidJSON, "order: %v", err)
			}
			switch {
			case o.ID == "":
				return Order{}, codecs.Reject(codecs.ReasonMissingField, `order has no "id"`)
			case o.Customer != key:
				return Order{}, codecs.Reject(codecs.ReasonKeyMismatch, "order %s is for customer %q but keyed %q", o.ID, o.Customer, key)
			}
			return o, nil
		},
		DecodeScore: func(_ string, value []byte) (int64, error) {
			tier, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil {
				return 0, codecs.Reject(codecs.ReasonWrongType, "tier is not a number: %v", err)
			}
			return tier, nil
		},
		EncodeOutput: func(dst []byte, o Order, score int64) ([]byte, error) {
			b, err := json.Marshal(OrderWithTier{Order: o, Tier: tierName(score)})
			if err != nil {
				return dst, err
			}
			return append(dst, b...), nil
		},
	}
}
