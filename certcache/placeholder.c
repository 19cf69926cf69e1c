/* placeholder */ typedef int certcache_placeholder;
