# Small front door to the project's scripts; each target is one script or tool call.
.PHONY: bootstrap stack-up stack-down stack-status stack-reset test demo bench reliability soak lint schemas

bootstrap:  ## install Python deps, Debian packages and the Kafka jars (idempotent)
	bash scripts/bootstrap.sh

stack-up:  ## start Kafka, PostgreSQL, Prometheus and the SMTP sink on 127.0.0.1
	bash scripts/stack.sh up

stack-down:
	bash scripts/stack.sh down

stack-status:
	bash scripts/stack.sh status

stack-reset:  ## stop and wipe all local state
	bash scripts/stack.sh reset

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	bash scripts/bench.sh

reliability:  ## the fault table: kills, broker and database restarts, rebalances, poison (docs/reliability.md)
	bash scripts/reliability.sh

soak:  ## ten minutes of steady load; lag and RSS of every service over time (docs/reliability.md)
	bash scripts/bench.sh soak

lint:
	.venv/bin/ruff check .

schemas:
	.venv/bin/python -m services.contracts
