package pricing

// The shipped table is generated from the genai-prices v2 feed kept beside the repository
// (../shared/pricing) and committed, so building and testing never need the feed.
//go:generate go run ./internal/genprices -in ../../../shared/pricing/genai-prices-v2.json -license ../../../shared/pricing/LICENSE -commit 47df840a5ab10bbcffb8e5ac01b9899032245d1b -out prices.json -license-out LICENSE.genai-prices
