// llmpi command-line entry point (subcommands dispatched in cli/commands).
#include <cstdio>
int main() { std::puts("llmpi"); return 0; }
