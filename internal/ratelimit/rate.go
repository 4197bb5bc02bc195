package ratelimit

import (
	"errors"
	"strconv"
	"strings"
)

// maxRate bounds a rate's count: beyond it a limit limits nothing.
const maxRate = 1_000_000

// parseRate reads "10r/s" or "30r/m", nginx's notation, as requests per second.
func parseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(s, "r/")
	if !ok || num == "" || len(num) > 7 {
		return 0, errors.New(`want a rate like "10r/s" or "30r/m"`)
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, errors.New(`want a rate like "10r/s" or "30r/m": a whole number of requests`)
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > maxRate {
		return 0, errors.New("the number of requests must be 1 to 1000000")
	}
	switch unit {
	case "s":
		return float64(n), nil
	case "m":
		return float64(n) / 60, nil
	}
	return 0, errors.New(`want "r/s" (per second) or "r/m" (per minute)`)
}
