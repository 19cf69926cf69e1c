/* placeholder */ typedef int master_placeholder;
