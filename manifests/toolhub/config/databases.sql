SELECT 'CREATE DATABASE webui' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'webui')\gexec
SELECT 'CREATE DATABASE litellm' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'litellm')\gexec
SELECT 'CREATE DATABASE langfuse' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'langfuse')\gexec
SELECT 'CREATE DATABASE workflows' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'workflows')\gexec
