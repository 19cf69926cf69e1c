/* placeholder until worker.c exists */ typedef int worker_placeholder;
