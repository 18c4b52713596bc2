import { join } from 'node:path';
import { createChdbAnalyticsStore } from './chdb.js';
import type { AnalyticsStore } from './port.js';
import { createServerAnalyticsStore } from './server.js';

export interface AnalyticsLocation {
  /** ClickHouse server URL; undefined = the embedded chDB engine. */
  clickhouseUrl?: string | undefined;
  /** User on the server. @default 'default' */
  clickhouseUser?: string | undefined;
  /** That user's password; never logged. @default '' */
  clickhousePassword?: string | undefined;
  /** Database on the server. @default 'switchyard' */
  database?: string | undefined;
  /** Local state directory; chDB keeps its data in `<home>/analytics`. */
  home: string;
}

/** The deployment's analytics store: the ClickHouse server when a URL is configured, else chDB under `home/analytics`. */
export function openAnalytics({ clickhouseUrl, clickhouseUser: user, clickhousePassword: password, database, home }: AnalyticsLocation): Promise<AnalyticsStore> {
  if (clickhouseUrl) return createServerAnalyticsStore({ url: clickhouseUrl, ...(user ? { user } : {}), ...(password !== undefined ? { password } : {}), ...(database ? { database } : {}) });
  return createChdbAnalyticsStore({ path: join(home, 'analytics') });
}
