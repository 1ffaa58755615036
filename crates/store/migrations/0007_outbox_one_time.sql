-- A message that carries a one-time link (an invitation): its body is replaced once it was
-- delivered, so the store does not keep a usable link after the mail left.
ALTER TABLE outbox ADD COLUMN one_time BIGINT NOT NULL DEFAULT 0;
