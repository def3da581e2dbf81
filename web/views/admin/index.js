// views/admin/index.js: the sections of the admin page and of "Your account", in order.
// Each is a module of its own ({ id, title, draw(), changed?(what) }, see ../admin.js);
// adding one (Server, Backup) is one import and one entry here.
import { password, sessions } from './account.js';
import backup from './backup.js';
import records from './records.js';
import server from './server.js';
import signup from './signup.js';
import users from './users.js';

export const adminSections = [users, signup, records, server, backup];

export const accountSections = [password, sessions];
